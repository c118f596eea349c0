// Positive example: a global JSON parser runs before every route, webhooks included.
import express from "express";

const app = express();
// ruleid: vsms-webhook-json-before-verify-js
app.use(express.json());

app.post("/webhooks/virtualsms", (req, res) => {
  const event = verifier.verify(JSON.stringify(req.body), req.headers);
  res.send(event.id);
});
