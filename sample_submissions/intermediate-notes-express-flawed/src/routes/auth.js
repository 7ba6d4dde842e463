const express = require("express");
const bcrypt = require("bcryptjs");
const jwt = require("jsonwebtoken");
const db = require("../db");
const { auth, JWT_SECRET } = require("../middleware/auth");

const router = express.Router();

// POST /api/register
router.post("/register", async (req, res) => {
  const { username, email, password, role } = req.body || {};

  if (typeof username !== "string" || typeof email !== "string" || typeof password !== "string") {
    return res.status(400).json({ error: "username, email and password are required" });
  }
  if (username.trim().length < 3) {
    return res.status(400).json({ error: "Username must be at least 3 characters" });
  }
  if (!email.includes("@")) {
    return res.status(400).json({ error: "Invalid email" });
  }
  if (password.length < 6) {
    return res.status(400).json({ error: "Password must be at least 6 characters" });
  }
  if (db.users.find((u) => u.email === email || u.username === username)) {
    return res.status(409).json({ error: "User already exists" });
  }

  const hashedPassword = await bcrypt.hash(password, 10);
  const user = {
    id: db.nextUserId++,
    username,
    email,
    password: hashedPassword,
    role: role || "user",
    createdAt: new Date().toISOString(),
  };
  db.users.push(user);

  res.status(201).json({
    message: "User registered successfully",
    user: { id: user.id, username: user.username, email: user.email, role: user.role },
  });
});

// POST /api/login
router.post("/login", async (req, res) => {
  const { email, password } = req.body || {};
  if (typeof email !== "string" || typeof password !== "string") {
    return res.status(400).json({ error: "email and password are required" });
  }

  const user = db.users.find((u) => u.email === email);
  if (!user) {
    return res.status(404).json({ error: "User not found" });
  }
  const valid = await bcrypt.compare(password, user.password);
  if (!valid) {
    return res.status(401).json({ error: "Wrong password" });
  }

  const token = jwt.sign({ id: user.id, username: user.username, role: user.role }, JWT_SECRET, {
    expiresIn: "7d",
  });
  res.json({ token });
});

// GET /api/users/me
router.get("/users/me", auth, (req, res) => {
  const user = db.users.find((u) => u.id === req.user.id);
  if (!user) {
    return res.status(404).json({ error: "User not found" });
  }
  res.json(user);
});

module.exports = router;
