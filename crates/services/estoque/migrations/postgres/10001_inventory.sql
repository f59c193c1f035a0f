-- estoque-service: items and the reservations that hold their stock.
CREATE TABLE items (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT        NOT NULL,
    description TEXT,
    quantity    BIGINT      NOT NULL CHECK (quantity >= 0),  -- available for sale
    reserved    BIGINT      NOT NULL DEFAULT 0 CHECK (reserved >= 0),  -- held for orders in flight
    sold        BIGINT      NOT NULL DEFAULT 0 CHECK (sold >= 0),  -- written off to committed orders
    price_cents BIGINT      NOT NULL CHECK (price_cents >= 0),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE reservations (
    id         BIGSERIAL PRIMARY KEY,
    reference  TEXT        NOT NULL UNIQUE,
    status     TEXT        NOT NULL CHECK (status IN ('held', 'committed', 'released')),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX reservations_held ON reservations (id) WHERE status = 'held';

CREATE TABLE reservation_lines (
    reservation_id   BIGINT NOT NULL REFERENCES reservations (id),
    item_id          BIGINT NOT NULL,
    item_name        TEXT   NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (reservation_id, item_id)
);
