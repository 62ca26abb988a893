'use strict';

const ms = require('ms');

const port = Number.parseInt(process.env.PORT || '3000', 10);

module.exports = Object.freeze({
  port: Number.isInteger(port) && port > 0 ? port : 3000,
  env: process.env.NODE_ENV || 'development',
  staticMaxAge: ms(process.env.STATIC_MAX_AGE || '1h'),
  startedAt: Date.now(),
});
