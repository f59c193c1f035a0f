//! The request mix of a run: every call built once before the run starts, and the
//! draw of the next one.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Uri};
use rand::rngs::SmallRng;
use rand::Rng;

use crate::client::{list_item_ids, send, uri, HttpClient};
use crate::Scenario;

#[derive(Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub uri: Uri,
    pub body: Option<Bytes>,
}

/// Everything a run sends, built once before the run starts.
pub(crate) struct Plan {
    pub list: Vec<Call>,
    pub item_gets: Vec<Call>,
    pub orders: Vec<Call>,
    /// Probability of an order; the rest are reads.
    pub order_share: f64,
}

impl Plan {
    pub fn pick(&self, rng: &mut SmallRng) -> &Call {
        if !self.orders.is_empty()
            && (self.order_share >= 1.0 || rng.random::<f64>() < self.order_share)
        {
            return &self.orders[rng.random_range(0..self.orders.len())];
        }
        if !self.item_gets.is_empty() && (self.list.is_empty() || rng.random::<bool>()) {
            return &self.item_gets[rng.random_range(0..self.item_gets.len())];
        }
        &self.list[rng.random_range(0..self.list.len())]
    }
}

pub(crate) fn order_call(base_url: &str, item_id: i64) -> Result<Call, String> {
    let body = format!(
        r#"{{"customer":"loadgen","items":[{{"item_id":{item_id},"quantity":1}}],"payment_method":"credit_card"}}"#
    );
    Ok(Call {
        method: Method::POST,
        uri: uri(base_url, "/orders")?,
        body: Some(Bytes::from(body)),
    })
}

pub(crate) fn get_call(base_url: &str, path: &str) -> Result<Call, String> {
    Ok(Call {
        method: Method::GET,
        uri: uri(base_url, path)?,
        body: None,
    })
}

pub(crate) async fn plan_for(base_url: &str, scenario: &Scenario) -> Result<Plan, String> {
    let reads = |ids: &[i64]| -> Result<(Vec<Call>, Vec<Call>), String> {
        let list = vec![get_call(base_url, "/items")?];
        let gets = ids
            .iter()
            .map(|id| get_call(base_url, &format!("/items/{id}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((list, gets))
    };
    Ok(match scenario {
        Scenario::Browse => {
            let ids = list_item_ids(base_url).await.unwrap_or_default();
            let (list, item_gets) = reads(&ids)?;
            Plan {
                list,
                item_gets,
                orders: vec![],
                order_share: 0.0,
            }
        }
        Scenario::OrderHot { item_id } => Plan {
            list: vec![],
            item_gets: vec![],
            orders: vec![order_call(base_url, *item_id)?],
            order_share: 1.0,
        },
        Scenario::OrderSpread { item_ids } => {
            if item_ids.is_empty() {
                return Err("OrderSpread needs at least one item id".into());
            }
            Plan {
                list: vec![],
                item_gets: vec![],
                orders: item_ids
                    .iter()
                    .map(|id| order_call(base_url, *id))
                    .collect::<Result<_, _>>()?,
                order_share: 1.0,
            }
        }
        Scenario::Mixed { item_ids } => {
            if item_ids.is_empty() {
                return Err("Mixed needs at least one item id".into());
            }
            let (list, item_gets) = reads(item_ids)?;
            Plan {
                list,
                item_gets,
                orders: item_ids
                    .iter()
                    .map(|id| order_call(base_url, *id))
                    .collect::<Result<_, _>>()?,
                order_share: 0.1,
            }
        }
    })
}

/// Sends `call` and reads its whole answer: its status, or `Err` for a transport
/// error or no answer within `timeout`.
pub(crate) async fn execute(
    client: &HttpClient,
    call: &Call,
    timeout: Duration,
) -> Result<u16, ()> {
    let answer = send(
        client,
        call.method.clone(),
        call.uri.clone(),
        call.body.clone(),
    );
    match tokio::time::timeout(timeout, answer).await {
        Ok(Ok((status, _))) => Ok(status),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn mixed_plan_is_about_ten_percent_orders() {
        let orders = vec![order_call("http://h", 1).unwrap()];
        let plan = Plan {
            list: vec![get_call("http://h", "/items").unwrap()],
            item_gets: vec![get_call("http://h", "/items/1").unwrap()],
            orders,
            order_share: 0.1,
        };
        let mut rng = SmallRng::seed_from_u64(1);
        let posts = (0..10_000)
            .filter(|_| plan.pick(&mut rng).method == Method::POST)
            .count();
        assert!((800..1200).contains(&posts), "{posts}");
    }
}
