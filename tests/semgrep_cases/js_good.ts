// Negative examples: nothing in this file may be reported.
import crypto from "node:crypto";
import express from "express";
import axios from "axios";

const app = express();
const BASE_URL = process.env.VIRTUALSMS_BASE_URL ?? "https://virtualsms.io";
const placeholder = "vsms_your_api_key_here_replace_this_value";

export async function balance(apiKey: string) {
  await fetch(`${BASE_URL}/api/v1/customer/balance`, { headers: { "X-API-Key": apiKey } });
  const url = new URL(`${BASE_URL}/api/v1/price?service=wa`);
  url.searchParams.set("country", "us");
  return url;
}

export function logRequest(req: express.Request) {
  console.log("request id", req.headers["x-request-id"]);
  console.info(`upstream ${BASE_URL}`);
}

export function compare(secret: string, raw: Buffer, header: string | undefined) {
  if (header === undefined || header.length !== 64) return false;
  const signature = crypto.createHmac("sha256", secret).update(raw).digest("hex");
  return crypto.timingSafeEqual(Buffer.from(signature), Buffer.from(header));
}

app.post("/webhooks/virtualsms", express.raw({ type: "application/json" }), (req, res) => {
  if (!verifySignature(req.body, req.get("X-VirtualSMS-Signature"))) {
    return res.status(400).end();
  }
  const event = JSON.parse(req.body.toString("utf8"));
  res.send(event.id);
});

app.post("/mcp", (req, res) => {
  const timeout = Number(req.query.timeout ?? 10000);
  const client = axios.create({ baseURL: BASE_URL, timeout });
  res.json({ ok: Boolean(client) });
});
