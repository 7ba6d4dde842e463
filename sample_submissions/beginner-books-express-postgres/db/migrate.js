// Applies db/migrations/*.sql in order, once each (recorded in schema_migrations). Run: npm run migrate
require("dotenv").config();

const fs = require("fs");
const path = require("path");
const pool = require("../src/db");

async function migrate() {
  await pool.query("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())");
  const { rows } = await pool.query("SELECT name FROM schema_migrations");
  const done = new Set(rows.map((r) => r.name));
  const dir = path.join(__dirname, "migrations");
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    if (done.has(file)) continue;
    const sql = fs.readFileSync(path.join(dir, file), "utf8");
    await pool.query("BEGIN");
    try {
      await pool.query(sql);
      await pool.query("INSERT INTO schema_migrations (name) VALUES ($1)", [file]);
      await pool.query("COMMIT");
      console.log(`applied ${file}`);
    } catch (err) {
      await pool.query("ROLLBACK");
      throw err;
    }
  }
  console.log("migrations up to date");
}

migrate()
  .then(() => pool.end())
  .catch((err) => {
    console.error("migration failed:", err.message);
    process.exit(1);
  });
