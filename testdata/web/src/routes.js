'use strict';

const path = require('node:path');
const express = require('express');
const ms = require('ms');

const config = require('./config');
const pkg = require('../package.json');

const router = express.Router();

router.get('/health', (req, res) => {
  res.json({ status: 'ok' });
});

router.get('/version', (req, res) => {
  res.json({
    name: pkg.name,
    version: pkg.version,
    node: process.version,
    env: config.env,
    uptime: ms(Date.now() - config.startedAt, { long: true }),
  });
});

router.get('/', (req, res) => {
  res.sendFile(path.join(__dirname, '..', 'public', 'index.html'));
});

module.exports = router;
