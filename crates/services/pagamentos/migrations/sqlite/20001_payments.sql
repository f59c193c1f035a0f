-- pagamentos-service: one payment per order at most (the idempotency key is the order id).
CREATE TABLE payments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id     INTEGER NOT NULL UNIQUE,
    amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
    method       TEXT    NOT NULL CHECK (method IN ('credit_card', 'debit_card', 'pix', 'boleto')),
    status       TEXT    NOT NULL CHECK (status IN ('approved', 'declined', 'refunded', 'voided')),
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);
