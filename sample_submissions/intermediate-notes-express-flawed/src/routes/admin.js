const express = require("express");
const db = require("../db");

const router = express.Router();

// GET /api/admin/users
router.get("/users", (req, res) => {
  const users = db.users.map(({ password, ...user }) => user);
  res.json(users);
});

module.exports = router;
