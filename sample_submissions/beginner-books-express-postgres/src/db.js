const { Pool } = require("pg");

// DATABASE_URL comes from .env (see .env.example)
const pool = new Pool({ connectionString: process.env.DATABASE_URL });

module.exports = pool;
