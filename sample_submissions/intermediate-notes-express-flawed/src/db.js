// In-memory "database". Data is lost on restart (TODO: move to MongoDB)
const db = {
  users: [],
  notes: [],
  nextUserId: 1,
  nextNoteId: 1,
};

module.exports = db;
