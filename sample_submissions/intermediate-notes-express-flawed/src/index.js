require("dotenv").config();
const path = require("path");
const express = require("express");

const authRoutes = require("./routes/auth");
const notesRoutes = require("./routes/notes");
const adminRoutes = require("./routes/admin");
const { auth, isAdmin } = require("./middleware/auth");

const app = express();
const PORT = process.env.PORT || 3000;

app.use(express.json());

app.get("/", (req, res) => {
  res.json({ message: "Notes API is running. Docs: /openapi.json" });
});

app.get("/health", (req, res) => {
  res.json({ status: "ok" });
});

app.get("/openapi.json", (req, res) => {
  res.sendFile(path.join(__dirname, "..", "openapi.json"));
});

app.use("/api", authRoutes);
app.use("/api/notes", auth, notesRoutes);
app.use("/api/admin", auth, isAdmin, adminRoutes);

app.use((req, res) => {
  res.status(404).json({ error: "Route not found" });
});

// error handler (bad JSON etc.)
app.use((err, req, res, next) => {
  console.error(err.message);
  res.status(err.status || 500).json({ error: err.message || "Something went wrong" });
});

app.listen(PORT, () => {
  console.log(`Server running on port ${PORT}`);
});
