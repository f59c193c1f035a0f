-- estoque-service: items and the reservations that hold their stock.
CREATE TABLE items (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    description TEXT,
    quantity    INTEGER NOT NULL CHECK (quantity >= 0),
    reserved    INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    sold        INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

CREATE TABLE reservations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    reference  TEXT    NOT NULL UNIQUE,
    status     TEXT    NOT NULL CHECK (status IN ('held', 'committed', 'released')),
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
);

CREATE INDEX reservations_held ON reservations (id) WHERE status = 'held';

CREATE TABLE reservation_lines (
    reservation_id   INTEGER NOT NULL REFERENCES reservations (id),
    item_id          INTEGER NOT NULL,
    item_name        TEXT    NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (reservation_id, item_id)
);
