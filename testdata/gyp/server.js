// Loads the native addon the deps layer built, and says so.
const { Epoll } = require('epoll');
console.log(`epoll addon loaded: ${typeof Epoll}`);
