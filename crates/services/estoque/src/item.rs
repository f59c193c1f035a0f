//! Items: the catalogue with its stock, and the seed's per-item stock calls
//! (`reserve`, `write-off`, `release`), each one atomic conditional UPDATE.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonBody;
use chrono::{DateTime, Utc};
use platform::extract::{Id, Json, Query};
use platform::money::Money;
use platform::page::Page;
use platform::{check_len, check_range, check_text, with_conn, ApiError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::state::AppState;
use crate::stock::{insufficient_stock, item_not_found};

/// Largest stock level of one item.
pub const MAX_STOCK: i64 = 1_000_000_000;
const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 2000;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct Item {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// Units available for sale.
    pub quantity: i64,
    /// Units held for orders in flight.
    pub reserved: i64,
    #[sqlx(rename = "price_cents", try_from = "i64")]
    pub price: Money,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! item_columns {
    () => {
        "id, name, description, quantity, reserved, price_cents, created_at, updated_at"
    };
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewItem {
    /// 1-200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Initial stock, default 0.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub quantity: Option<i64>,
    /// Unit price, default 0.
    pub price: Option<Money>,
}

/// `PUT`: every field is replaced (description becomes null when absent).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ItemReplacement {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub quantity: i64,
    pub price: Money,
}

/// `PATCH`: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ItemPatch {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// New stock available for sale (restock).
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub quantity: Option<i64>,
    pub price: Option<Money>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StockMove {
    /// Units to move, >= 1.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub quantity: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StockMoveResult {
    pub message: String,
    pub item: Item,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Return items with an id greater than this.
    #[param(minimum = 0)]
    pub after: Option<i64>,
}

fn check_fields(
    name: Option<&str>,
    description: Option<&str>,
    quantity: Option<i64>,
) -> Result<(), ApiError> {
    if let Some(name) = name {
        check_text("name", name, MAX_NAME)?;
    }
    if let Some(description) = description {
        check_len("description", description, MAX_DESCRIPTION)?;
    }
    if let Some(quantity) = quantity {
        check_range("quantity", quantity, 0, MAX_STOCK)?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/items", tag = "estoque", params(ListParams),
    responses((status = 200, description = "Items in id order; a `Link` header points to the next page", body = [Item]),
              (status = 400, body = platform::error::ErrorBody)))]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let page = Page::new(params.limit, params.after)?;
    let rows: Vec<Item> = with_conn!(app.db.reader(), |conn| {
        sqlx::query_as(concat!(
            "SELECT ",
            item_columns!(),
            " FROM items WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(page.after)
        .bind(page.fetch_limit())
        .fetch_all(&mut *conn)
        .await?
    });
    let (headers, rows) = page.finish(rows, |i| i.id, "/items", &[]);
    Ok((headers, JsonBody(rows)).into_response())
}

pub async fn find(app: &AppState, id: i64) -> Result<Option<Item>, ApiError> {
    Ok(with_conn!(app.db.reader(), |conn| {
        sqlx::query_as(concat!(
            "SELECT ",
            item_columns!(),
            " FROM items WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    }))
}

#[utoipa::path(get, path = "/items/{id}", tag = "estoque", params(("id" = i64, Path)),
    responses((status = 200, body = Item), (status = 400, body = platform::error::ErrorBody), (status = 404, body = platform::error::ErrorBody)))]
pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
) -> Result<JsonBody<Item>, ApiError> {
    find(&app, id)
        .await?
        .map(JsonBody)
        .ok_or_else(|| item_not_found(id))
}

#[utoipa::path(post, path = "/items", tag = "estoque", request_body = NewItem,
    responses((status = 201, description = "Created; `Location` names the new item", body = Item),
              (status = 400, body = platform::error::ErrorBody), (status = 413, body = platform::error::ErrorBody),
              (status = 415, body = platform::error::ErrorBody)))]
pub async fn create(
    State(app): State<Arc<AppState>>,
    Json(new): Json<NewItem>,
) -> Result<Response, ApiError> {
    check_fields(Some(&new.name), new.description.as_deref(), new.quantity)?;
    let now = platform::now();
    let item: Item = with_conn!(app.db.writer(), |conn| {
        sqlx::query_as(concat!(
            "INSERT INTO items (name, description, quantity, reserved, sold, price_cents, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, 0, $4, $5, $5) RETURNING ", item_columns!()))
            .bind(&new.name)
            .bind(&new.description)
            .bind(new.quantity.unwrap_or(0))
            .bind(new.price.unwrap_or_default().cents())
            .bind(now)
            .fetch_one(&mut *conn)
            .await?
    });
    let location =
        HeaderValue::from_str(&format!("/items/{}", item.id)).map_err(|_| ApiError::internal())?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        JsonBody(item),
    )
        .into_response())
}

#[utoipa::path(put, path = "/items/{id}", tag = "estoque", params(("id" = i64, Path)), request_body = ItemReplacement,
    responses((status = 200, body = Item), (status = 400, body = platform::error::ErrorBody), (status = 404, body = platform::error::ErrorBody)))]
pub async fn replace(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
    Json(item): Json<ItemReplacement>,
) -> Result<JsonBody<Item>, ApiError> {
    check_fields(
        Some(&item.name),
        item.description.as_deref(),
        Some(item.quantity),
    )?;
    update(
        &app,
        id,
        Some(item.name),
        Some(item.description),
        Some(item.quantity),
        Some(item.price),
    )
    .await
}

#[utoipa::path(patch, path = "/items/{id}", tag = "estoque", params(("id" = i64, Path)), request_body = ItemPatch,
    responses((status = 200, body = Item), (status = 400, body = platform::error::ErrorBody), (status = 404, body = platform::error::ErrorBody)))]
pub async fn patch(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
    Json(patch): Json<ItemPatch>,
) -> Result<JsonBody<Item>, ApiError> {
    check_fields(
        patch.name.as_deref(),
        patch.description.as_deref(),
        patch.quantity,
    )?;
    update(
        &app,
        id,
        patch.name,
        patch.description.map(Some),
        patch.quantity,
        patch.price,
    )
    .await
}

/// One UPDATE for PUT and PATCH: `None` keeps a column as it is. `description` is
/// doubly optional: absent keeps it, `Some(None)` clears it.
async fn update(
    app: &AppState,
    id: i64,
    name: Option<String>,
    description: Option<Option<String>>,
    quantity: Option<i64>,
    price: Option<Money>,
) -> Result<JsonBody<Item>, ApiError> {
    let (set_description, description) = match description {
        Some(d) => (true, d),
        None => (false, None),
    };
    let item: Option<Item> = with_conn!(app.db.writer(), |conn| {
        sqlx::query_as(concat!(
            "UPDATE items SET name = COALESCE($2, name), \
             description = CASE WHEN $3 THEN $4 ELSE description END, \
             quantity = COALESCE($5, quantity), price_cents = COALESCE($6, price_cents), updated_at = $7 \
             WHERE id = $1 RETURNING ", item_columns!()))
            .bind(id)
            .bind(name)
            .bind(set_description)
            .bind(description)
            .bind(quantity)
            .bind(price.map(Money::cents))
            .bind(platform::now())
            .fetch_optional(&mut *conn)
            .await?
    });
    item.map(JsonBody).ok_or_else(|| item_not_found(id))
}

#[utoipa::path(delete, path = "/items/{id}", tag = "estoque", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = platform::error::ErrorBody),
              (status = 409, description = "Stock of the item is held by reservations", body = platform::error::ErrorBody)))]
pub async fn delete(State(app): State<Arc<AppState>>, Id(id): Id) -> Result<StatusCode, ApiError> {
    let deleted = with_conn!(app.db.writer(), |conn| {
        sqlx::query("DELETE FROM items WHERE id = $1 AND reserved = 0")
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    if deleted == 1 {
        return Ok(StatusCode::NO_CONTENT);
    }
    match find(&app, id).await? {
        None => Err(item_not_found(id)),
        Some(item) => Err(ApiError::conflict(
            "item_has_reservations",
            format!("item {id} has {} units held by reservations", item.reserved),
        )
        .with("item_id", id)
        .with("reserved", item.reserved)),
    }
}

/// The three seed calls differ only in their UPDATE and in the column that must cover `n`.
#[derive(Clone, Copy)]
enum Move {
    Reserve,
    WriteOff,
    Release,
}

impl Move {
    fn sql(self) -> &'static str {
        match self {
            Move::Reserve => concat!(
                "UPDATE items SET quantity = quantity - $1, reserved = reserved + $1, updated_at = $2 \
                 WHERE id = $3 AND quantity >= $1 RETURNING ", item_columns!()),
            Move::WriteOff => concat!(
                "UPDATE items SET reserved = reserved - $1, sold = sold + $1, updated_at = $2 \
                 WHERE id = $3 AND reserved >= $1 RETURNING ", item_columns!()),
            Move::Release => concat!(
                "UPDATE items SET reserved = reserved - $1, quantity = quantity + $1, updated_at = $2 \
                 WHERE id = $3 AND reserved >= $1 RETURNING ", item_columns!()),
        }
    }

    fn message(self, n: i64) -> String {
        match self {
            Move::Reserve => format!("{n} units reserved"),
            Move::WriteOff => format!("{n} reserved units written off"),
            Move::Release => format!("{n} reserved units released"),
        }
    }
}

async fn move_stock(
    app: &AppState,
    id: i64,
    n: i64,
    kind: Move,
) -> Result<JsonBody<StockMoveResult>, ApiError> {
    check_range("quantity", n, 1, MAX_STOCK)?;
    let moved: Option<Item> = with_conn!(app.db.writer(), |conn| {
        sqlx::query_as(kind.sql())
            .bind(n)
            .bind(platform::now())
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
    });
    if let Some(item) = moved {
        return Ok(JsonBody(StockMoveResult {
            message: kind.message(n),
            item,
        }));
    }
    let item = find(app, id).await?.ok_or_else(|| item_not_found(id))?;
    Err(match kind {
        Move::Reserve => {
            app.metrics.stock_conflict();
            insufficient_stock(id, item.quantity, n)
        }
        Move::WriteOff | Move::Release => ApiError::conflict(
            "insufficient_reserved",
            format!("item {id} has only {} units reserved", item.reserved),
        )
        .with("item_id", id)
        .with("reserved", item.reserved)
        .with("requested", n),
    })
}

#[utoipa::path(patch, path = "/items/{id}/reserve", tag = "estoque", params(("id" = i64, Path)), request_body = StockMove,
    responses((status = 200, body = StockMoveResult), (status = 400, body = platform::error::ErrorBody),
              (status = 404, body = platform::error::ErrorBody), (status = 409, description = "insufficient_stock, with `available`", body = platform::error::ErrorBody)))]
pub async fn reserve(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
    Json(body): Json<StockMove>,
) -> Result<JsonBody<StockMoveResult>, ApiError> {
    move_stock(&app, id, body.quantity, Move::Reserve).await
}

#[utoipa::path(patch, path = "/items/{id}/write-off", tag = "estoque", params(("id" = i64, Path)), request_body = StockMove,
    responses((status = 200, body = StockMoveResult), (status = 400, body = platform::error::ErrorBody),
              (status = 404, body = platform::error::ErrorBody), (status = 409, description = "fewer units held", body = platform::error::ErrorBody)))]
pub async fn write_off(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
    Json(body): Json<StockMove>,
) -> Result<JsonBody<StockMoveResult>, ApiError> {
    move_stock(&app, id, body.quantity, Move::WriteOff).await
}

#[utoipa::path(patch, path = "/items/{id}/release", tag = "estoque", params(("id" = i64, Path)), request_body = StockMove,
    responses((status = 200, body = StockMoveResult), (status = 400, body = platform::error::ErrorBody),
              (status = 404, body = platform::error::ErrorBody), (status = 409, description = "fewer units held", body = platform::error::ErrorBody)))]
pub async fn release(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
    Json(body): Json<StockMove>,
) -> Result<JsonBody<StockMoveResult>, ApiError> {
    move_stock(&app, id, body.quantity, Move::Release).await
}
