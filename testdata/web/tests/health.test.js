'use strict';

const test = require('node:test');
const assert = require('node:assert');

const app = require('../server');

test('GET /health answers {"status":"ok"}', async () => {
  const server = app.listen(0);
  try {
    const { port } = server.address();
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    assert.strictEqual(res.status, 200);
    assert.deepStrictEqual(await res.json(), { status: 'ok' });
  } finally {
    server.close();
  }
});

test('GET / serves the page', async () => {
  const server = app.listen(0);
  try {
    const { port } = server.address();
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.strictEqual(res.status, 200);
    assert.match(await res.text(), /<h1>web<\/h1>/);
  } finally {
    server.close();
  }
});
