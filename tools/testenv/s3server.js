// Test-only S3 server that checks SigV4 signatures (s3rver v5), bound to loopback.
//   node s3server.js DIR PORT [BUCKET...]
// Prints one line "listening <port>" once it accepts connections (PORT 0 picks a free port).
// Credentials are S3RVER / S3RVER. Stops on SIGTERM or SIGINT.
'use strict';
const crypto = require('node:crypto');

// s3rver encrypts ListObjectsV2 continuation tokens with single DES, which node's OpenSSL 3
// only has in its legacy provider: every truncated listing would answer 500. Two-key 3DES-CBC
// with both halves equal is the same cipher, and the default provider has it.
for (const name of ['createCipheriv', 'createDecipheriv']) {
  const orig = crypto[name];
  crypto[name] = function (alg, key, iv, opts) {
    if (String(alg).toLowerCase() === 'des') {
      try {
        return orig.call(crypto, alg, key, iv, opts);
      } catch (e) {
        return orig.call(crypto, 'des-ede-cbc', Buffer.concat([key, key]), iv, opts);
      }
    }
    return orig.call(crypto, alg, key, iv, opts);
  };
}

const S3rver = require('@20minutes/s3rver');

const [dir, port, ...buckets] = process.argv.slice(2);
if (!dir || port === undefined) {
  console.error('usage: node s3server.js DIR PORT [BUCKET...]');
  process.exit(2);
}
const server = new S3rver({
  directory: dir,
  address: '127.0.0.1',
  port: Number(port),
  silent: true,
  configureBuckets: (buckets.length ? buckets : ['test']).map((name) => ({ name, configs: [] })),
});
server.run().then(
  (addr) => console.log('listening', addr.port),
  (e) => { console.error('s3server:', e.message); process.exit(1); });
const stop = () => server.close().then(() => process.exit(0), () => process.exit(1));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
