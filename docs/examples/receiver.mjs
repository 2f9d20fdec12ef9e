// A webhook receiver that verifies Tidings notifications with stock libraries.
//
//   npm install standardwebhooks jose
//   WEBHOOK_SECRET=whsec_... TIDINGS_URL=http://127.0.0.1:8080 node receiver.mjs 9002
import http from "node:http";
import { Webhook } from "standardwebhooks";
import { createRemoteJWKSet, jwtVerify } from "jose";

const secret = process.env.WEBHOOK_SECRET;
const tidingsUrl = process.env.TIDINGS_URL ?? "http://127.0.0.1:8080"; // the server's public URL
const port = Number(process.argv[2] ?? 9002);

// A "whsec_..." secret is base64; any other secret is used as raw bytes.
const webhook = secret.startsWith("whsec_")
  ? new Webhook(secret)
  : new Webhook(new TextEncoder().encode(secret), { format: "raw" });
const jwks = createRemoteJWKSet(new URL(`${tidingsUrl}/.well-known/jwks.json`));

http
  .createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString("utf8");
    try {
      // 1. The HMAC signature binds id, timestamp and body (and rejects old timestamps).
      const payload = webhook.verify(body, req.headers);
      // 2. Optional: the bearer token, checked against Tidings' published keys.
      const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
      const { payload: claims } = await jwtVerify(token, jwks, {
        issuer: tidingsUrl,
        audience: `http://${req.headers.host}`, // the origin of your webhook URL
        algorithms: ["EdDSA"],
      });
      // De-duplicate on webhook-id: retries carry the same id.
      console.log("verified", req.headers["webhook-id"], payload.type, "webhook", claims.webhook);
      console.log(JSON.stringify(payload));
      res.writeHead(204).end();
    } catch (e) {
      console.log("rejected:", e.message);
      res.writeHead(401).end();
    }
  })
  .listen(port, "127.0.0.1");
