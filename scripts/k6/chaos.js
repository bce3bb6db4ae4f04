// Chaos: shoppers keep ordering while a second scenario breaks things on purpose through
// the services' admin endpoints, then heals them. What must hold:
//   - service-b failing every POST /events: service-a's breaker opens, events wait in the
//     Postgres outbox, and orders are still answered 201 `accepted`;
//   - once service-b is back, the outbox drains: an order placed during the outage ends
//     `fulfilled`;
//   - service-d slow (300 ms on every route): products and orders get slower, yet succeed
//     (service-a's downstream timeout is 2 s, the gateway's 10 s).
//
// Timeline (seconds from the start; both scenarios start together):
//   0-20 baseline | 20-60 service-b fails | 60-75 service-b back, breaker recovers, outbox
//   drains | 75-105 service-d slow | 105-150 recovery. The controller then waits (up to
//   60 s more) for the outage's canary order to be fulfilled. Every request is tagged with
//   its `phase`, so the thresholds (and Grafana, through the OTLP output) can tell them apart.
//
//   docker compose --profile load run --rm k6 run /scripts/chaos.js
// The admin endpoints are not published to the host, so run it inside the compose network
// (as above) or point SERVICE_B_ADMIN_URL / SERVICE_D_ADMIN_URL at reachable addresses.
//
// Environment: BASE_URL, SERVICE_B_ADMIN_URL, SERVICE_D_ADMIN_URL, ADMIN_TOKEN (see
// lib/shop.js), CHAOS_VUS (shoppers, default 5), SLOW_MS (service-d latency, default 300).

import http from 'k6/http';
import exec from 'k6/execution';
import { check, fail, group, sleep } from 'k6';
import {
  ADMIN_TOKEN,
  BASE_URL,
  NAMES,
  SERVICE_B_ADMIN_URL,
  SERVICE_D_ADMIN_URL,
  basket,
  checkCreated,
  createOrder,
  getOrder,
  inStockSkus,
  listProducts,
  positiveInt,
  resetFaults,
  setFault,
  showFaults,
  traceIdOf,
  SYSTEM_TAGS,
} from './lib/shop.js';

const VUS = positiveInt(__ENV.CHAOS_VUS, 5, 'CHAOS_VUS');
const SLOW_MS = positiveInt(__ENV.SLOW_MS, 300, 'SLOW_MS');

// Phase boundaries in seconds.
const T = { bDown: 20, bUp: 60, dSlow: 75, dFast: 105, end: 150 };
const CANARY_DEADLINE_AFTER_END_S = 60;

function phaseAt(elapsedS) {
  if (elapsedS < T.bDown) return 'baseline';
  if (elapsedS < T.bUp) return 'service_b_down';
  if (elapsedS < T.dSlow) return 'service_b_recovering';
  if (elapsedS < T.dFast) return 'service_d_slow';
  return 'recovery';
}

const elapsedS = () => (Date.now() - exec.scenario.startTime) / 1000;

function sleepUntil(atS) {
  const wait = atS - elapsedS();
  if (wait > 0) sleep(wait);
}

const CONTROL = { chaos: 'controller' };

export const options = {
  scenarios: {
    shoppers: {
      executor: 'constant-vus',
      exec: 'shop',
      vus: VUS,
      duration: `${T.end}s`,
      gracefulStop: '10s',
    },
    chaos: {
      executor: 'per-vu-iterations',
      exec: 'breakThings',
      vus: 1,
      iterations: 1,
      maxDuration: `${T.end + CANARY_DEADLINE_AFTER_END_S + 20}s`,
    },
  },
  thresholds: {
    // Every step of the controller did what it should (faults applied, canary behaved).
    'checks{chaos:controller}': ['rate==1'],
    // The point of the breaker and the outbox: orders keep succeeding while service-b fails.
    [`http_req_failed{name:${NAMES.createOrder},phase:service_b_down}`]: ['rate<0.01'],
    [`http_req_failed{name:${NAMES.createOrder},phase:service_d_slow}`]: ['rate<0.01'],
    'http_req_failed{scenario:shoppers}': ['rate<0.02'],
    'checks{scenario:shoppers}': ['rate>0.98'],
    // Baseline is fast, the injected latency is visible at the gateway, and it goes away.
    [`http_req_duration{name:${NAMES.products},phase:baseline}`]: ['p(95)<300'],
    [`http_req_duration{name:${NAMES.products},phase:service_d_slow}`]: [`med>=${SLOW_MS}`],
    [`http_req_duration{name:${NAMES.createOrder},phase:service_d_slow}`]: ['p(95)<2500'],
    [`http_req_duration{name:${NAMES.products},phase:recovery}`]: ['p(95)<300'],
  },
  systemTags: SYSTEM_TAGS,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(95)', 'p(99)'],
};

// Fails fast when the admin endpoints are unreachable or reject the token, and starts
// from a clean state.
export function setup() {
  if (!ADMIN_TOKEN) {
    fail('ADMIN_TOKEN is not set: chaos.js needs the bearer token of /admin/faults');
  }
  for (const [name, url] of [
    ['service-b', SERVICE_B_ADMIN_URL],
    ['service-d', SERVICE_D_ADMIN_URL],
  ]) {
    const res = resetFaults(url, CONTROL);
    if (res.status !== 200) {
      fail(`${name} admin endpoint ${url}/admin/faults answered ${res.status} ${res.error || ''}: ${res.body}`);
    }
  }
  console.log(`chaos: ${VUS} shoppers against ${BASE_URL} for ${T.end}s`);
}

// Leaves no fault behind, even when the run was aborted.
export function teardown() {
  resetFaults(SERVICE_B_ADMIN_URL, CONTROL);
  resetFaults(SERVICE_D_ADMIN_URL, CONTROL);
}

// ---------------------------------------------------------------------- shoppers
export function shop() {
  const tags = { phase: phaseAt(elapsedS()) };
  let skus = [];
  group('browse', () => {
    skus = inStockSkus(listProducts(tags));
  });
  sleep(0.2 + Math.random() * 0.3);
  group('order', () => {
    const { res, order } = createOrder(`k6-chaos-vu${__VU}-it${__ITER}`, basket(skus), tags);
    if (checkCreated(res, order, tags)) {
      const got = getOrder(order.id, tags);
      check(got.res, { 'get order: status 200': (r) => r.status === 200 }, tags);
    }
  });
  sleep(0.5 + Math.random() * 0.5);
}

// ---------------------------------------------------------------------- controller
function applied(res, expect) {
  let body = null;
  try {
    body = res.json();
  } catch (_) {
    body = null;
  }
  return res.status === 200 && !!body && expect(body);
}

export function breakThings() {
  // 1. service-b fails every POST /events.
  sleepUntil(T.bDown);
  let res = setFault(SERVICE_B_ADMIN_URL, { route: 'POST /events', latency_ms: 0, error_rate: 1.0 }, CONTROL);
  check(res, {
    'service-b: POST /events fails (fault applied)': (r) =>
      applied(r, (b) => b.routes && b.routes['POST /events'] && b.routes['POST /events'].error_rate === 1),
  }, CONTROL);
  console.log(`t=${elapsedS().toFixed(0)}s service-b fails every POST /events`);

  // 2. An order during the outage is still accepted, and stays accepted: its event waits
  //    in the outbox instead of reaching Kafka.
  sleep(5);
  const skus = inStockSkus(listProducts(CONTROL));
  const canary = createOrder(`k6-chaos-canary-${Date.now()}`, [{ sku: skus[0], quantity: 1 }], CONTROL);
  check(canary.res, {
    'outage: order still 201 accepted': (r) =>
      r.status === 201 && !!canary.order && canary.order.status === 'accepted',
  }, CONTROL);
  const canaryId = canary.order && canary.order.id;
  console.log(`t=${elapsedS().toFixed(0)}s canary order ${canaryId} (trace ${traceIdOf(canary.res) || 'unknown'})`);
  sleep(10);
  if (canaryId) {
    const during = getOrder(canaryId, CONTROL);
    check(during.order, {
      'outage: canary not fulfilled while service-b is down': (o) => !!o && o.status === 'accepted',
    }, CONTROL);
  }

  // 3. service-b is back: the breaker half-opens after BREAKER_OPEN_MS, closes on success,
  //    and the relay drains the outbox.
  sleepUntil(T.bUp);
  res = resetFaults(SERVICE_B_ADMIN_URL, CONTROL);
  check(res, {
    'service-b: faults reset': (r) => applied(r, (b) => !b.routes || Object.keys(b.routes).length === 0),
  }, CONTROL);
  console.log(`t=${elapsedS().toFixed(0)}s service-b healthy again`);

  // 4. service-d answers every route SLOW_MS later.
  sleepUntil(T.dSlow);
  res = setFault(SERVICE_D_ADMIN_URL, { latency_ms: SLOW_MS, error_rate: 0 }, CONTROL);
  check(res, {
    'service-d: slow on every route (fault applied)': (r) =>
      applied(r, (b) => b.default && b.default.latency_ms === SLOW_MS),
  }, CONTROL);
  console.log(`t=${elapsedS().toFixed(0)}s service-d slow (${SLOW_MS} ms)`);
  sleep(5);
  const slow = http.get(`${BASE_URL}/api/products`, { tags: { name: NAMES.products, ...CONTROL } });
  check(slow, {
    'service-d slow: visible at the gateway': (r) => r.status === 200 && r.timings.duration >= SLOW_MS,
  }, CONTROL);

  // 5. service-d fast again.
  sleepUntil(T.dFast);
  res = resetFaults(SERVICE_D_ADMIN_URL, CONTROL);
  check(res, {
    'service-d: faults reset': (r) => applied(r, (b) => b.default && b.default.latency_ms === 0),
  }, CONTROL);
  check(showFaults(SERVICE_B_ADMIN_URL, CONTROL), {
    'service-b: still no faults': (r) => applied(r, (b) => !b.routes || Object.keys(b.routes).length === 0),
  }, CONTROL);
  console.log(`t=${elapsedS().toFixed(0)}s service-d fast again`);

  // 6. Nothing was lost: the outage's canary order ends fulfilled.
  if (!canaryId) {
    return;
  }
  let last = null;
  while (elapsedS() < T.end + CANARY_DEADLINE_AFTER_END_S) {
    last = getOrder(canaryId, CONTROL).order || last;
    if (last && last.status === 'fulfilled') break;
    sleep(1);
  }
  check(last, {
    'recovery: canary from the outage fulfilled (outbox drained)': (o) => !!o && o.status === 'fulfilled',
  }, CONTROL);
  console.log(`t=${elapsedS().toFixed(0)}s canary ${canaryId} is ${last && last.status}`);
}
