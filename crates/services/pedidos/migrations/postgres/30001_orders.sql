-- pedidos-service: orders, their lines, and what the saga needs to finish them after a crash.
CREATE TABLE orders (
    id                  BIGSERIAL PRIMARY KEY,
    customer            TEXT        NOT NULL,
    status              TEXT        NOT NULL CHECK (status IN ('pending', 'paid', 'payment_declined', 'rejected', 'cancelled')),
    total_cents         BIGINT      NOT NULL DEFAULT 0 CHECK (total_cents >= 0),
    payment_method      TEXT        NOT NULL,
    payment_id          BIGINT,
    payment             TEXT,        -- the payment as pagamentos answered it (JSON), for idempotent replays
    reservation_id      BIGINT,
    failure_status      INTEGER,     -- HTTP status and error body of a rejected order
    failure             TEXT,
    idempotency_key     TEXT UNIQUE,
    request_fingerprint TEXT        NOT NULL,
    request_id          TEXT        NOT NULL,
    attempts            INTEGER     NOT NULL DEFAULT 0,
    lease_until         BIGINT,      -- epoch ms; while in the future, one saga runner owns the pending order
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

CREATE INDEX orders_pending ON orders (id) WHERE status = 'pending';
CREATE INDEX orders_by_status ON orders (status, id);
CREATE INDEX orders_by_customer ON orders (customer, id);

CREATE TABLE order_lines (
    id               BIGSERIAL PRIMARY KEY,
    order_id         BIGINT NOT NULL REFERENCES orders (id),
    item_id          BIGINT NOT NULL,
    item_name        TEXT,
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT CHECK (unit_price_cents >= 0)
);

CREATE INDEX order_lines_by_order ON order_lines (order_id);
