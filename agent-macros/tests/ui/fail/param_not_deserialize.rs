use agent_tool::tool;

struct Point {
    x: f64,
}

/// The parameter type must be `Deserialize` + `JsonSchema`.
#[tool]
fn distance(point: Point) -> f64 {
    point.x
}

fn main() {}
