// Positive examples: every line after a "ruleid:" comment must be reported by that rule.
import crypto from "node:crypto";
import express from "express";
import axios from "axios";

const app = express();

export async function balance(apiKey: string) {
  // ruleid: vsms-key-in-url-js
  await fetch(`https://virtualsms.io/api/v1/customer/balance?api_key=${apiKey}`);
  // ruleid: vsms-key-in-url-js
  const ws = new WebSocket("wss://virtualsms.io/ws/orders?order_id=1&api_key=" + apiKey);
  const url = new URL("https://virtualsms.io/api/v1/customer/orders");
  // ruleid: vsms-key-in-url-js
  url.searchParams.set("apiKey", apiKey);
  return ws;
}

export function logRequest(req: express.Request, client: { config: object }) {
  // ruleid: vsms-headers-logged-js
  console.log("incoming", req.headers);
  // ruleid: vsms-headers-logged-js
  console.debug(`headers ${JSON.stringify(req.headers)}`);
  // ruleid: vsms-headers-logged-js
  logger.info(client.config);
}

export function compare(secret: string, raw: Buffer, header: string) {
  const signature = crypto.createHmac("sha256", secret).update(raw).digest("hex");
  // ruleid: vsms-signature-equality-js
  return signature === header;
}

// ruleid: vsms-webhook-json-before-verify-js
app.post("/webhooks/virtualsms", express.json(), (req, res) => {
  if (!verifySignature(JSON.stringify(req.body), req.get("X-VirtualSMS-Signature"))) {
    return res.status(400).end();
  }
  res.send("ok");
});

export async function nextRoute(request: Request, secret: string) {
  // ruleid: vsms-webhook-json-before-verify-js
  const event = await request.json();
  verifyWebhook(JSON.stringify(event), request.headers.get("X-VirtualSMS-Signature"), secret);
  return event;
}

app.post("/mcp", (req, res) => {
  const upstream = req.query.baseUrl;
  // ruleid: vsms-base-url-from-request-js
  const client = axios.create({ baseURL: upstream, headers: { "X-API-Key": process.env.KEY } });
  res.json(client.defaults);
});

export async function paramsKey(apiKey: string) {
  const url = "https://virtualsms.io/api/v1/customer/balance";
  // ruleid: vsms-key-in-url-js
  return axios.get(url, { params: { api_key: apiKey } });
}

app.get("/relay", async (req, res) => {
  // ruleid: vsms-base-url-from-request-js
  const balance = await fetch(req.query.baseUrl + "/api/v1/customer/balance");
  const base = req.query.baseUrl;
  // ruleid: vsms-base-url-from-request-js
  const orders = await axios.get(`${base}/api/v1/customer/orders`);
  res.json({ balance, orders });
});
