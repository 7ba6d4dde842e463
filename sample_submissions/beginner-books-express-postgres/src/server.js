require("dotenv").config();

const app = require("./app");
const pool = require("./db");

const port = process.env.PORT;

async function main() {
  // fail fast when the database is not reachable
  await pool.query("SELECT 1");
  console.log("connected to PostgreSQL");
  app.listen(port, () => console.log(`books API listening on port ${port}`));
}

main().catch((err) => {
  console.error("could not start:", err.message);
  process.exit(1);
});
