// Shoppers at modest load: browse the products, place an order, read it back.
// Ramps up for 20% of the run, holds for 60%, ramps down for 20%. A few shoppers (5%) use
// a "fraud..." customer id and get the expected 422, so rejected orders show up in the
// telemetry too. Thresholds on p95/p99 latency per route, the error rate and the checks;
// a failed threshold makes k6 exit 99.
//
//   docker compose --profile load run --rm k6                      (load.js, 1 minute)
//   LOAD_DURATION=5m LOAD_VUS=20 docker compose --profile load run --rm k6
//   k6 run -e LOAD_DURATION=30s scripts/k6/load.js                  (stack on localhost:8080)
//
// Environment:
//   BASE_URL       gateway, default http://localhost:8080
//   LOAD_DURATION  whole run, default 1m (not K6_DURATION: k6 reads that as its own
//                  `duration` option, which replaces the scenario below; see lib/shop.js)
//   LOAD_VUS       peak virtual users, default 10 (well under the gateway's 200 req/s limit)
//   FRAUD_SHARE    share of iterations ordering as a "fraud..." customer, default 0.05

import http from 'k6/http';
import { check, group, sleep } from 'k6';
import {
  BASE_URL,
  NAMES,
  basket,
  checkCreated,
  createOrder,
  getOrder,
  inStockSkus,
  listProducts,
  parseDuration,
  positiveInt,
  seconds,
  SYSTEM_TAGS,
} from './lib/shop.js';

const DURATION_S = parseDuration(__ENV.LOAD_DURATION, 60);
const VUS = positiveInt(__ENV.LOAD_VUS, 10, 'LOAD_VUS');
const FRAUD_SHARE = Number(__ENV.FRAUD_SHARE === undefined ? 0.05 : __ENV.FRAUD_SHARE);

export const options = {
  scenarios: {
    shoppers: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: seconds(DURATION_S * 0.2), target: VUS },
        { duration: seconds(DURATION_S * 0.6), target: VUS },
        { duration: seconds(DURATION_S * 0.2), target: 0 },
      ],
      gracefulRampDown: '10s',
    },
  },
  thresholds: {
    // Unexpected statuses (the fraud 422s are expected): under 1%; a broken stack (over
    // 10% after the first 30 s) stops the run early instead of hammering it for minutes.
    http_req_failed: [
      'rate<0.01',
      { threshold: 'rate<0.10', abortOnFail: true, delayAbortEval: '30s' },
    ],
    checks: ['rate>0.99'],
    [`http_req_duration{name:${NAMES.products}}`]: ['p(95)<300', 'p(99)<800'],
    [`http_req_duration{name:${NAMES.createOrder}}`]: ['p(95)<800', 'p(99)<1500'],
    [`http_req_duration{name:${NAMES.getOrder}}`]: ['p(95)<300', 'p(99)<800'],
  },
  systemTags: SYSTEM_TAGS,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};

export function setup() {
  console.log(`load: ${VUS} VUs for ${seconds(DURATION_S)} against ${BASE_URL}`);
}

export default function () {
  let skus = [];
  group('browse', () => {
    skus = inStockSkus(listProducts());
  });
  sleep(0.2 + Math.random() * 0.5);

  const fraud = Math.random() < FRAUD_SHARE;
  group('order', () => {
    const customer = `${fraud ? 'fraud' : 'k6'}-vu${__VU}-it${__ITER}`;
    if (fraud) {
      const { res } = createOrder(customer, basket(skus), {}, {
        responseCallback: http.expectedStatuses(422),
      });
      check(res, { 'fraud order: status 422': (r) => r.status === 422 });
      return;
    }
    const { res, order } = createOrder(customer, basket(skus));
    if (!checkCreated(res, order)) {
      return;
    }
    const got = getOrder(order.id);
    check(got.res, {
      'get order: status 200': (r) => r.status === 200,
      'get order: same id': () => !!got.order && got.order.id === order.id,
    });
  });
  sleep(0.5 + Math.random());
}
