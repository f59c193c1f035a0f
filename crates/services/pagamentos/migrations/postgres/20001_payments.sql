-- pagamentos-service: one payment per order at most (the idempotency key is the order id).
CREATE TABLE payments (
    id           BIGSERIAL PRIMARY KEY,
    order_id     BIGINT      NOT NULL UNIQUE,
    amount_cents BIGINT      NOT NULL CHECK (amount_cents >= 0),
    method       TEXT        NOT NULL CHECK (method IN ('credit_card', 'debit_card', 'pix', 'boleto')),
    status       TEXT        NOT NULL CHECK (status IN ('approved', 'declined', 'refunded', 'voided')),
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
