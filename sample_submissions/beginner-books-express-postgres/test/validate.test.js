const test = require("node:test");
const assert = require("node:assert");
const request = require("node:http");

process.env.DATABASE_URL = process.env.DATABASE_URL || "postgres://books:books@127.0.0.1:5432/books";
const app = require("../src/app");

function call(server, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = request.request({ port: server.address().port, method, path, headers: { "content-type": "application/json" } }, (res) => {
      let data = "";
      res.on("data", (c) => (data += c));
      res.on("end", () => resolve({ status: res.statusCode, body: data ? JSON.parse(data) : null }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("a book without an author is refused before touching the database", async () => {
  const server = app.listen(0);
  try {
    const res = await call(server, "POST", "/books", JSON.stringify({ title: "Dune" }));
    assert.strictEqual(res.status, 422);
    assert.match(res.body.details.join(" "), /author/);
  } finally {
    server.close();
  }
});

test("malformed JSON is a 400 JSON error", async () => {
  const server = app.listen(0);
  try {
    const res = await call(server, "POST", "/books", "{oops");
    assert.strictEqual(res.status, 400);
    assert.strictEqual(res.body.error, "malformed JSON body");
  } finally {
    server.close();
  }
});
