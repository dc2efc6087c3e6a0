//! The nodes sharing this node's store, with their liveness and the groups they host.

use actix_web::{web, HttpResponse};

use crate::auth::{Allowed, AnyCaller};
use crate::dto::NodeDto;
use crate::problem::Problem;
use crate::state::AppState;

/// Lists the nodes the store knows (live ones and those stopped in the last hour), oldest first.
#[utoipa::path(get, path = "/api/scheduler/nodes", tag = "scheduler",
    responses(
        (status = 200, description = "The nodes", body = [NodeDto]),
        (status = 503, description = "The job store is unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(_: Allowed<AnyCaller>, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let nodes = state.call(|s| s.nodes()).await?;
    Ok(HttpResponse::Ok().json(nodes.iter().map(NodeDto::from).collect::<Vec<_>>()))
}
