// Container healthcheck for our processes (docker-compose.yml): exits 0 when the URL
// answers 2xx within the timeout, 1 otherwise. Plain Node, so the slim image needs no curl.
//   node deploy/docker/healthcheck.js http://127.0.0.1:9101/healthz
const url = process.argv[2];
if (!url) {
  console.error('usage: node healthcheck.js <url>');
  process.exit(2);
}
fetch(url, { signal: AbortSignal.timeout(4000) })
  .then((res) => process.exit(res.ok ? 0 : 1))
  .catch((err) => {
    console.error(`${url}: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
