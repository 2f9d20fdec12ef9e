"""A webhook receiver that verifies Tidings notifications with stock libraries.

    pip install standardwebhooks pyjwt cryptography
    WEBHOOK_SECRET=whsec_... TIDINGS_URL=http://127.0.0.1:8080 python3 receiver.py 9001
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt  # PyJWT
from standardwebhooks.webhooks import Webhook

SECRET = os.environ["WEBHOOK_SECRET"]
TIDINGS_URL = os.environ.get("TIDINGS_URL", "http://127.0.0.1:8080")  # the server's public URL
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 9001

# A "whsec_..." secret is base64; any other secret is used as raw bytes.
webhook = Webhook(SECRET if SECRET.startswith("whsec_") else SECRET.encode())
jwks = jwt.PyJWKClient(f"{TIDINGS_URL}/.well-known/jwks.json")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            # 1. The HMAC signature binds id, timestamp and body (and rejects old timestamps).
            payload = webhook.verify(body, headers)
            # 2. Optional: the bearer token, checked against Tidings' published keys.
            token = headers.get("authorization", "").removeprefix("Bearer ")
            claims = jwt.decode(
                token,
                jwks.get_signing_key_from_jwt(token).key,
                algorithms=["EdDSA"],
                audience=f"http://{self.headers['Host']}",  # the origin of your webhook URL
                issuer=TIDINGS_URL,
            )
        except Exception as e:  # reject anything that does not verify
            print("rejected:", e, flush=True)
            self.send_response(401)
            self.end_headers()
            return
        # De-duplicate on webhook-id: retries carry the same id.
        print("verified", headers["webhook-id"], payload["type"], "webhook", claims["webhook"], flush=True)
        print(json.dumps(payload), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
