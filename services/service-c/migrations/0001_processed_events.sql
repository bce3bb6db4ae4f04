-- Event ids service-c has processed: the idempotency record (in schema "fulfilment").
CREATE TABLE processed_events (
    event_id     UUID PRIMARY KEY,
    order_id     UUID        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
