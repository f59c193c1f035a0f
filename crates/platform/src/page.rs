//! Keyset pagination shared by every list: `?limit=` (default 100, max 1000) and
//! `?after=<id>`, in id order, with a `Link: <…>; rel="next"` header when more remain.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub after: i64,
}

impl Page {
    pub fn new(limit: Option<i64>, after: Option<i64>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid_field(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = after.unwrap_or(0);
        if after < 0 {
            return Err(ApiError::invalid_field("after", "after must be >= 0"));
        }
        Ok(Self { limit, after })
    }

    /// How many rows to fetch: one more than the page, to learn whether another page exists.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    /// Trims the extra row and, when there was one, builds the `Link` header to the next
    /// page. `filters` are the other query parameters, repeated in the link.
    pub fn finish<T>(
        &self,
        mut rows: Vec<T>,
        id_of: impl Fn(&T) -> i64,
        path: &str,
        filters: &[(&str, String)],
    ) -> (HeaderMap, Vec<T>) {
        let mut headers = HeaderMap::new();
        if rows.len() as i64 > self.limit {
            rows.truncate(self.limit as usize);
            if let Some(last) = rows.last() {
                let mut params: Vec<(&str, String)> = filters.to_vec();
                params.push(("limit", self.limit.to_string()));
                params.push(("after", id_of(last).to_string()));
                let query = serde_urlencoded::to_string(&params).unwrap_or_default();
                if let Ok(value) = HeaderValue::from_str(&format!("<{path}?{query}>; rel=\"next\""))
                {
                    headers.insert(header::LINK, value);
                }
            }
        }
        (headers, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_bounds() {
        assert!(Page::new(Some(0), None).is_err());
        assert!(Page::new(Some(1001), None).is_err());
        assert!(Page::new(None, Some(-1)).is_err());
        let page = Page::new(None, None).unwrap();
        assert_eq!((page.limit, page.after), (100, 0));
    }

    #[test]
    fn next_link_only_when_more_rows() {
        let page = Page::new(Some(2), None).unwrap();
        let (headers, rows) = page.finish(
            vec![1, 2, 3],
            |r| *r,
            "/orders",
            &[("customer", "João Silva".into())],
        );
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(
            headers.get(header::LINK).unwrap(),
            "</orders?customer=Jo%C3%A3o+Silva&limit=2&after=2>; rel=\"next\""
        );
        let (headers, rows) = page.finish(vec![1, 2], |r| *r, "/orders", &[]);
        assert_eq!(rows.len(), 2);
        assert!(headers.get(header::LINK).is_none());
    }
}
