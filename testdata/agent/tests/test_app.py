import json
import threading
import unittest
import urllib.request
from http.server import ThreadingHTTPServer

import app
from worker import load_settings


class AppTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ThreadingHTTPServer(("127.0.0.1", 0), app.Handler)
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        cls.base = "http://127.0.0.1:%d" % cls.server.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=5) as r:
            return r.status, json.loads(r.read())

    def test_health(self):
        self.assertEqual(self.get("/health"), (200, {"status": "ok"}))

    def test_index(self):
        status, body = self.get("/")
        self.assertEqual(status, 200)
        self.assertEqual(body["name"], "agent")

    def test_env_overrides_settings(self):
        self.assertEqual(load_settings(environ={"PORT": "9000"})["port"], 9000)


if __name__ == "__main__":
    unittest.main()
