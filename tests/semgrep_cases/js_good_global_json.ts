// Negative examples: the webhook route is registered before the global JSON parser.
import express from "express";

const app = express();
app.post("/webhooks/virtualsms", express.raw({ type: "application/json" }), (req, res) => {
  const event = verifier.verify(req.body, req.headers);
  res.send(event.id);
});
app.use(express.json());
app.post("/api/orders", (req, res) => res.json(req.body));

export async function paramsWithoutKey(service: string) {
  return axios.get("https://virtualsms.io/api/v1/price", { params: { service, country: "us" } });
}
