const express = require("express");
const db = require("../db");

const router = express.Router();

function findNote(id) {
  return db.notes.find((n) => n.id === Number(id));
}

// POST /api/notes
router.post("/", (req, res) => {
  const { title, content } = req.body || {};
  if (typeof title !== "string" || title.trim() === "") {
    return res.status(400).json({ error: "Title is required" });
  }
  const now = new Date().toISOString();
  const note = {
    id: db.nextNoteId++,
    title,
    content: typeof content === "string" ? content : "",
    userId: req.user.id,
    createdAt: now,
    updatedAt: now,
  };
  db.notes.push(note);
  res.status(201).json(note);
});

// GET /api/notes?page=1&limit=10  (only the logged in user's notes)
router.get("/", (req, res) => {
  const page = Math.max(parseInt(req.query.page) || 1, 1);
  const limit = Math.min(Math.max(parseInt(req.query.limit) || 10, 1), 100);
  const myNotes = db.notes.filter((n) => n.userId === req.user.id);
  const start = (page - 1) * limit;
  res.json({ page, limit, total: myNotes.length, notes: myNotes.slice(start, start + limit) });
});

// GET /api/notes/:id
router.get("/:id", (req, res) => {
  const note = findNote(req.params.id);
  if (!note) {
    return res.status(404).json({ error: "Note not found" });
  }
  res.json(note);
});

// PUT /api/notes/:id
router.put("/:id", (req, res) => {
  const note = findNote(req.params.id);
  if (!note) {
    return res.status(404).json({ error: "Note not found" });
  }
  const { title, content } = req.body || {};
  if (title !== undefined && (typeof title !== "string" || title.trim() === "")) {
    return res.status(400).json({ error: "Title cannot be empty" });
  }
  if (title !== undefined) note.title = title;
  if (typeof content === "string") note.content = content;
  note.updatedAt = new Date().toISOString();
  res.json(note);
});

// DELETE /api/notes/:id
router.delete("/:id", (req, res) => {
  const index = db.notes.findIndex((n) => n.id === Number(req.params.id));
  if (index === -1) {
    return res.status(404).json({ error: "Note not found" });
  }
  db.notes.splice(index, 1);
  res.json({ message: "Note deleted" });
});

module.exports = router;
