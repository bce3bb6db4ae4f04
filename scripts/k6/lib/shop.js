// Shared by smoke.js, load.js and chaos.js: configuration from the environment and the
// shopper's requests against the gateway (the only public entry of the demo).
//
// Environment (k6 passes the process environment to __ENV):
//   BASE_URL             gateway, default http://localhost:8080 (compose: http://api-gateway:8080)
//   SERVICE_B_ADMIN_URL  service-b's admin base URL, default http://localhost:8082 (chaos.js)
//   SERVICE_D_ADMIN_URL  service-d's admin base URL, default http://localhost:8084 (chaos.js)
//   ADMIN_TOKEN          bearer token of /admin/faults (chaos.js)
//
// Our own knobs are deliberately not named K6_*: k6 reads K6_DURATION, K6_VUS, K6_ITERATIONS
// and K6_STAGES as its own options, and set in the environment they replace the script's
// `scenarios` entirely (k6 2.2: "env level configuration overrode scenarios configuration
// entirely"; K6_DURATION=30s alone then fails with "the number of VUs must be more than 0").
// Note: `k6 run` passes the system environment to __ENV, `k6 inspect` does not (use -e).

import http from 'k6/http';
import { check } from 'k6';

const trimSlash = (url) => url.replace(/\/+$/, '');

export const BASE_URL = trimSlash(__ENV.BASE_URL || 'http://localhost:8080');
export const SERVICE_B_ADMIN_URL = trimSlash(__ENV.SERVICE_B_ADMIN_URL || 'http://localhost:8082');
export const SERVICE_D_ADMIN_URL = trimSlash(__ENV.SERVICE_D_ADMIN_URL || 'http://localhost:8084');
export const ADMIN_TOKEN = __ENV.ADMIN_TOKEN || '';

// k6's default system tags minus `url` (and subproto, tls_version, service). Tags become
// Prometheus labels (through the OTLP output), and with `url` every GET /api/orders/<uuid> would
// start a new series; the `name` tag carries the route template instead.
export const SYSTEM_TAGS = [
  'proto', 'status', 'method', 'name', 'group', 'check', 'error', 'error_code', 'scenario', 'expected_response',
];

// The demo catalogue; sku-scale exists but is out of stock.
export const SKUS = ['sku-espresso', 'sku-grinder', 'sku-kettle', 'sku-filter'];

const JSON_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json' };

// Request names: metrics are tagged by route template, not by the raw URL (bounded series).
export const NAMES = {
  products: 'GET /api/products',
  createOrder: 'POST /api/orders',
  getOrder: 'GET /api/orders/{id}',
};

// "1m", "90s", "1m30s", "2h", "500ms" or a plain number of seconds -> seconds.
export function parseDuration(text, fallbackSeconds) {
  if (text === undefined || text === null || String(text).trim() === '') {
    return fallbackSeconds;
  }
  const value = String(text).trim();
  if (/^\d+(\.\d+)?$/.test(value)) {
    return Number(value);
  }
  const units = { h: 3600, m: 60, s: 1, ms: 0.001 };
  const part = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let consumed = '';
  let match;
  while ((match = part.exec(value)) !== null) {
    total += Number(match[1]) * units[match[2]];
    consumed += match[0];
  }
  if (consumed !== value || total <= 0) {
    throw new Error(`cannot parse duration "${value}" (examples: 90s, 1m, 1m30s)`);
  }
  return total;
}

export function positiveInt(text, fallback, name) {
  if (text === undefined || text === '') {
    return fallback;
  }
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be a positive integer, got "${text}"`);
  }
  return value;
}

export const seconds = (s) => `${Math.max(1, Math.round(s))}s`;

export function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

// The trace id of a response, from the W3C `traceresponse` header the services return
// (version-traceid-spanid-flags), so a failing run names a trace to open in Grafana.
export function traceIdOf(res) {
  const header = res.headers.Traceresponse || res.headers.traceresponse || '';
  const parts = header.split('-');
  return parts.length === 4 ? parts[1] : '';
}

function safeJson(res) {
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

export function listProducts(tags = {}) {
  const res = http.get(`${BASE_URL}/api/products`, {
    headers: { Accept: 'application/json' },
    tags: { name: NAMES.products, ...tags },
  });
  const products = safeJson(res);
  check(
    res,
    {
      'products: status 200': (r) => r.status === 200,
      'products: a non-empty list': () => Array.isArray(products) && products.length > 0,
    },
    tags,
  );
  return Array.isArray(products) ? products : [];
}

// In-stock skus from a product list (falls back to the known demo skus).
export function inStockSkus(products) {
  const skus = products.filter((p) => p && p.stock > 0).map((p) => p.sku);
  return skus.length > 0 ? skus : SKUS;
}

export function createOrder(customerId, items, tags = {}, params = {}) {
  const res = http.post(`${BASE_URL}/api/orders`, JSON.stringify({ customer_id: customerId, items }), {
    headers: JSON_HEADERS,
    tags: { name: NAMES.createOrder, ...tags },
    ...params,
  });
  return { res, order: safeJson(res) };
}

export function checkCreated(res, order, tags = {}) {
  return check(
    res,
    {
      'create order: status 201': (r) => r.status === 201,
      'create order: has an id': () => !!(order && order.id),
      // The response reads the order back after the event went out, so on a fast path
      // service-c may already have fulfilled it.
      'create order: accepted or fulfilled': () =>
        !!order && (order.status === 'accepted' || order.status === 'fulfilled'),
      'create order: total_cents > 0': () => !!order && order.total_cents > 0,
    },
    tags,
  );
}

export function getOrder(id, tags = {}) {
  const res = http.get(`${BASE_URL}/api/orders/${id}`, {
    headers: { Accept: 'application/json' },
    tags: { name: NAMES.getOrder, ...tags },
  });
  return { res, order: safeJson(res) };
}

// A random small basket of in-stock products.
export function basket(skus) {
  const lines = 1 + Math.floor(Math.random() * 2);
  const chosen = {};
  for (let i = 0; i < lines; i++) {
    chosen[pick(skus)] = 1 + Math.floor(Math.random() * 2);
  }
  return Object.keys(chosen).map((sku) => ({ sku, quantity: chosen[sku] }));
}

// --- admin endpoints (fault injection) -------------------------------------------------

function adminParams(tags) {
  return {
    headers: { ...JSON_HEADERS, Authorization: `Bearer ${ADMIN_TOKEN}` },
    tags: { name: 'admin /admin/faults', ...tags },
    // Admin calls are not part of the app's error rate.
    responseCallback: http.expectedStatuses(200),
  };
}

// PUT /admin/faults: {"route": "POST /events", "latency_ms": 0, "error_rate": 1.0};
// `route` omitted = every business route of that service.
export function setFault(adminBaseUrl, fault, tags = {}) {
  return http.put(`${adminBaseUrl}/admin/faults`, JSON.stringify(fault), adminParams(tags));
}

// DELETE /admin/faults: back to the service's environment defaults.
export function resetFaults(adminBaseUrl, tags = {}) {
  return http.del(`${adminBaseUrl}/admin/faults`, null, adminParams(tags));
}

export function showFaults(adminBaseUrl, tags = {}) {
  return http.get(`${adminBaseUrl}/admin/faults`, adminParams(tags));
}
