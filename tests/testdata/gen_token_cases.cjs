// Generates tests/testdata/token_cases.json with Moment (moment-timezone) as
// the oracle, cross-checked with Day.js for the tokens Day.js has. Not part of
// the project's dependencies: run it in a scratch directory, e.g.
//   mkdir /tmp/oracle && cd /tmp/oracle && npm i moment-timezone@0.6.6 dayjs@1.11.23
//   NODE_PATH=/tmp/oracle/node_modules node /path/to/gen_token_cases.cjs /path/to/tests/testdata/token_cases.json
const moment = require("moment-timezone");
const dayjs = require("dayjs");
dayjs.extend(require("dayjs/plugin/utc"));
dayjs.extend(require("dayjs/plugin/timezone"));
const U = Date.UTC;
const zones = {
  "UTC": [
    0,
    -1000,
    946684800123,
    1709164800999,
    4102444800000,
    U(2026, 0, 1),
    U(2026, 0, 1, 12),
    U(2027, 0, 1),
    U(2024, 11, 30),
  ],
  "Europe/Berlin": [
    U(2026, 2, 29, 0, 59, 59, 999),
    U(2026, 2, 29, 1),
    U(2026, 9, 25, 0, 59, 59),
    U(2026, 9, 25, 1, 0, 0, 5),
  ],
  "America/New_York": [
    U(2026, 2, 8, 6, 59, 59),
    U(2026, 2, 8, 7),
    U(2026, 10, 1, 5, 59, 59),
    U(2026, 10, 1, 6, 0, 0, 50),
    U(2027, 0, 1, 4, 59, 59),
  ],
  "Australia/Lord_Howe": [
    U(2026, 3, 4, 14, 59, 59),
    U(2026, 3, 4, 15),
    U(2026, 9, 3, 15, 29, 59),
    U(2026, 9, 3, 15, 30),
  ],
  "Asia/Kolkata": [U(2024, 11, 29, 18, 29, 59), U(2024, 11, 29, 18, 30, 0, 7)],
  "Asia/Tokyo": [U(2026, 10, 22, 1, 30)],
};
const formats = [
  "YYYY-MM-DD HH:mm:ss",
  "YY M MM MMM MMMM",
  "D DD Do DDD DDDD",
  "d dd ddd dddd E",
  "H HH h hh k kk A a",
  "m mm s ss S SS SSS",
  "Z ZZ",
  "X x",
  "Q W WW GGGG GG",
  "[Today is] dddd, MMMM Do YYYY [at] h:mm A",
  "YYYY-MM-DDTHH:mm:ss.SSSZ",
  "YYYY年MM月DD日 HH時",
  "[]YYYY[[x]]",
  "z",
  "]YYYY] [%]",
  "Time: HH:mm",
  "Mo Qo DDDo do Wo e",
];
const dayjsFormats = new Set([
  "YYYY-MM-DD HH:mm:ss",
  "YY M MM MMM MMMM",
  "H HH h hh A a",
  "m mm s ss SSS",
  "Z ZZ",
  "YYYY-MM-DDTHH:mm:ss.SSSZ",
  "YYYY年MM月DD日 HH時",
]);
const cases = [];
for (const [zone, instants] of Object.entries(zones)) {
  for (const t of instants) {
    const m = moment(t).tz(zone);
    const out = {};
    for (const f of formats) {
      out[f] = m.format(f);
      if (dayjsFormats.has(f)) {
        const d = dayjs(t).tz(zone).format(f);
        if (d !== out[f]) {
          throw new Error(`Day.js and Moment differ: ${zone} ${t} ${f}: ${d} vs ${out[f]}`);
        }
      }
    }
    cases.push({ zone, t, out });
  }
}
const doc = {
  generator: `moment-timezone ${moment.tz.version} data, moment ${moment.version}`,
  cases,
};
require("fs").writeFileSync(process.argv[2], JSON.stringify(doc, null, 1) + "\n");
console.log(cases.length, "instants x", formats.length, "formats");
