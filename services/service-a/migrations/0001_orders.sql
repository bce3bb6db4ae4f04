-- Orders, their lines, and the transactional outbox of order events.
CREATE TABLE orders (
    id           UUID PRIMARY KEY,
    customer_id  TEXT        NOT NULL,
    status       TEXT        NOT NULL,
    total_cents  BIGINT      NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    fulfilled_at TIMESTAMPTZ
);

CREATE TABLE order_items (
    order_id         UUID   NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line             INT    NOT NULL,
    sku              TEXT   NOT NULL,
    quantity         INT    NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    PRIMARY KEY (order_id, line)
);

-- An event is written here in the same transaction as its order, with the W3C trace
-- context of the request, and marked delivered once service-b acknowledged it.
CREATE TABLE outbox (
    event_id     UUID PRIMARY KEY,
    order_id     UUID        NOT NULL,
    payload      JSONB       NOT NULL,
    traceparent  TEXT,
    tracestate   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts     INT         NOT NULL DEFAULT 0,
    last_error   TEXT,
    delivered_at TIMESTAMPTZ
);

CREATE INDEX outbox_pending ON outbox (created_at) WHERE delivered_at IS NULL;
