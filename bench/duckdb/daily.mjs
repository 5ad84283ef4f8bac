// make bench: DuckDB's side of the content-metrics daily comparison (bench/run_duckdb.py).
//
//   node daily.mjs prepare EVENTS.csv EVENTS.parquet
//       Untimed, once per input: the exported content events (one row per content event, the
//       columns the daily aggregation reads) from CSV into Parquet with explicit column types.
//   node daily.mjs run EVENTS.parquet --threads N|default [--repeat K]
//       One measured round in a fresh in-memory database; prints one JSON object on stdout:
//       - file_query_s:   the daily aggregation straight over read_parquet (file -> answer);
//       - load_s:         CREATE TABLE events AS SELECT * FROM read_parquet(...);
//       - mem_query_s:    the same aggregation over the loaded table, K times (the first one is
//                         load_plus_query_s - load_s);
//       - the result rows of every query (the harness checks they are all the same and equal
//         logproc's daily_content_metrics rows), DuckDB's version and the threads it used.
// Times are performance.now() around each runAndReadAll, result materialisation included.
import { DuckDBInstance } from '@duckdb/node-api';
import { performance } from 'node:perf_hooks';

const COLS = ['view_count', 'impression_count', 'joined_impression_count',
  'joined_impression_position_sum', 'navigate_count', 'add_to_cart_count', 'checkout_count',
  'purchase_count', 'gmv_usd_micros'];
const DAY_MS = 86400000;

// SQL string literal: the paths come from the harness, but quote them properly anyway.
const lit = (s) => "'" + String(s).replaceAll("'", "''") + "'";

// The daily table of spec/other-jobs.md §C: epoch-aligned UTC days of the event time, per
// (platform_id, content_id), the nine sums; the same order as logproc writes a window (platform,
// then content id). Sums are cast back to BIGINT (DuckDB widens sum(BIGINT) to HUGEINT).
function dailySql(from) {
  const sums = COLS.map((c) => `CAST(sum(${c}) AS BIGINT) AS ${c}`).join(', ');
  return `SELECT strftime(DATE '1970-01-01' + CAST(event_time_ms // ${DAY_MS} AS INTEGER), '%Y-%m-%d') AS dt,
                 platform_id, content_id, ${sums}
          FROM ${from}
          GROUP BY event_time_ms // ${DAY_MS}, platform_id, content_id
          ORDER BY dt, platform_id, content_id`;
}

async function timed(conn, sql) {
  const t0 = performance.now();
  const reader = await conn.runAndReadAll(sql);
  const rows = reader.getRowsJson();
  return { s: (performance.now() - t0) / 1000, rows };
}

async function prepare(csv, parquet) {
  const inst = await DuckDBInstance.create(':memory:');
  const conn = await inst.connect();
  const types = ['event_time_ms: BIGINT', 'platform_id: UBIGINT', 'content_id: VARCHAR']
    .concat(COLS.map((c) => `${c}: BIGINT`)).join(', ').replace(/(\w+): (\w+)/g, "'$1': '$2'");
  await conn.run(`COPY (SELECT * FROM read_csv(${lit(csv)}, header = true, columns = {${types}}))
                  TO ${lit(parquet)} (FORMAT parquet)`);
  const n = await conn.runAndReadAll(`SELECT count(*) FROM read_parquet(${lit(parquet)})`);
  process.stdout.write(JSON.stringify({ rows: Number(n.getRowsJson()[0][0]) }) + '\n');
  conn.closeSync();
  inst.closeSync();
}

async function run(parquet, threads, repeat) {
  const t0 = performance.now();
  const opts = threads === 'default' ? {} : { threads: String(threads) };
  const inst = await DuckDBInstance.create(':memory:', opts);
  const conn = await inst.connect();
  const setup_s = (performance.now() - t0) / 1000;
  const info = (await conn.runAndReadAll(
    "SELECT version(), current_setting('threads')")).getRowsJson()[0];
  const file = await timed(conn, dailySql(`read_parquet(${lit(parquet)})`));
  const load = await timed(conn, `CREATE TABLE events AS SELECT * FROM read_parquet(${lit(parquet)})`);
  const input_rows = Number((await conn.runAndReadAll('SELECT count(*) FROM events')).getRowsJson()[0][0]);
  const mem = [];
  for (let i = 0; i < repeat; i++) mem.push(await timed(conn, dailySql('events')));
  const same = mem.every((m) => JSON.stringify(m.rows) === JSON.stringify(file.rows));
  const out = {
    duckdb_version: info[0],
    threads: Number(info[1]),
    threads_requested: threads,
    setup_s,
    file_query_s: file.s,
    load_s: load.s,
    load_plus_query_s: load.s + mem[0].s,
    mem_query_s: mem.map((m) => m.s),
    input_rows,
    columns: ['dt', 'platform_id', 'content_id'].concat(COLS),
    rows_consistent: same,
    rows: file.rows,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  conn.closeSync();
  inst.closeSync();
}

function usage() {
  process.stderr.write('usage: node daily.mjs prepare EVENTS.csv EVENTS.parquet\n' +
    '       node daily.mjs run EVENTS.parquet --threads N|default [--repeat K]\n');
  process.exit(2);
}

const argv = process.argv.slice(2);
if (argv[0] === 'prepare' && argv.length === 3) {
  await prepare(argv[1], argv[2]);
} else if (argv[0] === 'run' && argv.length >= 2) {
  let threads = 'default';
  let repeat = 5;
  for (let i = 2; i < argv.length; i += 2) {
    if (argv[i] === '--threads') threads = argv[i + 1];
    else if (argv[i] === '--repeat') repeat = Number(argv[i + 1]);
    else usage();
  }
  if (threads !== 'default' && !(Number(threads) >= 1)) usage();
  if (!(repeat >= 1)) usage();
  await run(argv[1], threads, repeat);
} else {
  usage();
}
