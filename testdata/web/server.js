'use strict';

const path = require('node:path');
const express = require('express');
const debug = require('debug')('web:server');

const config = require('./src/config');
const routes = require('./src/routes');

const app = express();
app.disable('x-powered-by');
app.use(express.json());
app.use(express.static(path.join(__dirname, 'public'), { maxAge: config.staticMaxAge }));
app.use(routes);

if (require.main === module) {
  const server = app.listen(config.port, () => {
    console.log(`web listening on port ${config.port}`);
    debug('config %o', config);
  });
  const stop = (signal) => {
    console.log(`${signal} received, closing`);
    server.close(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

module.exports = app;
