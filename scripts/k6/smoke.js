// One order through the whole flow, gateway to Kafka consumer and back:
//   GET /api/products -> 200, POST /api/orders -> 201 (accepted),
//   GET /api/orders/{id} until `fulfilled` (service-c consumed the Kafka event) within 30 s,
//   and a customer id starting with "fraud" -> 422 problem+json.
// Any failed check or request fails a threshold, and k6 exits non-zero (99).
//
//   k6 run scripts/k6/smoke.js                                   (stack on localhost:8080)
//   docker compose --profile load run --rm k6 run /scripts/smoke.js
//
// Environment: BASE_URL (default http://localhost:8080), FULFIL_TIMEOUT (default 30s).

import http from 'k6/http';
import { check, fail, sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import {
  BASE_URL,
  checkCreated,
  createOrder,
  getOrder,
  inStockSkus,
  listProducts,
  parseDuration,
  traceIdOf,
  SYSTEM_TAGS,
} from './lib/shop.js';

const FULFIL_TIMEOUT_S = parseDuration(__ENV.FULFIL_TIMEOUT, 30);
const POLL_INTERVAL_S = 0.5;

const fulfilled = new Counter('smoke_orders_fulfilled');
const timeToFulfil = new Trend('smoke_time_to_fulfil', true);

export const options = {
  scenarios: {
    smoke: { executor: 'shared-iterations', vus: 1, iterations: 1, maxDuration: '90s' },
  },
  thresholds: {
    // Every check passed, no unexpected HTTP status, and the order reached `fulfilled`.
    checks: ['rate==1'],
    http_req_failed: ['rate==0'],
    smoke_orders_fulfilled: ['count==1'],
  },
  systemTags: SYSTEM_TAGS,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(95)', 'p(99)'],
};

export default function () {
  const products = listProducts();
  const skus = inStockSkus(products);
  check(products, {
    'products: sku-espresso is listed': (p) => p.some((x) => x.sku === 'sku-espresso'),
  });

  const customerId = `k6-smoke-${Date.now()}`;
  const { res, order } = createOrder(customerId, [
    { sku: skus.includes('sku-espresso') ? 'sku-espresso' : skus[0], quantity: 2 },
  ]);
  if (!checkCreated(res, order)) {
    fail(`POST /api/orders answered ${res.status}: ${res.body} (trace ${traceIdOf(res) || 'unknown'})`);
  }
  console.log(`order ${order.id} created, trace ${traceIdOf(res) || 'unknown'}`);

  // Poll until service-c has consumed the event and service-a marked the order fulfilled.
  const started = Date.now();
  let last = order;
  while ((Date.now() - started) / 1000 < FULFIL_TIMEOUT_S) {
    const got = getOrder(order.id);
    check(got.res, { 'get order: status 200': (r) => r.status === 200 });
    last = got.order || last;
    if (last && last.status === 'fulfilled') {
      break;
    }
    sleep(POLL_INTERVAL_S);
  }
  const elapsedMs = Date.now() - started;
  const isFulfilled = check(last, {
    [`order: fulfilled within ${FULFIL_TIMEOUT_S}s`]: (o) => !!o && o.status === 'fulfilled',
    'order: fulfilled_at is set': (o) => !!o && !!o.fulfilled_at,
  });
  if (isFulfilled) {
    fulfilled.add(1);
    timeToFulfil.add(elapsedMs);
    console.log(`order ${order.id} fulfilled after ${elapsedMs} ms`);
  } else {
    console.error(`order ${order.id} still "${last && last.status}" after ${FULFIL_TIMEOUT_S}s`);
  }

  // The error path: the fraud check rejects customer ids starting with "fraud".
  const rejected = createOrder(
    `fraud-k6-smoke-${Date.now()}`,
    [{ sku: skus[0], quantity: 1 }],
    {},
    { responseCallback: http.expectedStatuses(422) },
  );
  check(rejected.res, {
    'fraud order: status 422': (r) => r.status === 422,
    'fraud order: problem+json body': (r) =>
      String(r.headers['Content-Type'] || '').startsWith('application/problem+json'),
  });
}

export function setup() {
  console.log(`smoke test against ${BASE_URL}`);
}
