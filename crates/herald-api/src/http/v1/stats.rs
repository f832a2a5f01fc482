//! Delivery statistics: Svix's attempt time series, and Herald's grouped series that fills
//! an analytics page in one request. Both read the rollups written with each attempt
//! (`herald_core::stats`), never the attempts themselves.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use herald_core::stats::{Counts, Dimension, Resolution, StatsQuery, StatsRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, HttpErrorOut, HttpValidationError};
use crate::http::extract::ApiQuery;
use crate::http::list::comma_list;
use crate::settings::HealthThresholds;
use crate::state::AppState;

/// The most buckets one series may have.
const MAX_BUCKETS: i64 = 1_500;
/// The longest range a query may cover.
const MAX_RANGE: TimeDelta = TimeDelta::days(400);

/// `startDate`/`endDate` of Svix's statistics routes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AttemptStatisticsQuery {
    /// Default: 7 days before `endDate` (or 24 hours with `period` FiveMinutes).
    pub start_date: Option<DateTime<Utc>>,
    /// Default: now.
    pub end_date: Option<DateTime<Utc>>,
}

/// How long one data point of a Svix statistics series spans.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum StatisticsPeriod {
    OneDay,
    FiveMinutes,
}

/// Successful and failed attempts per period.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptStatisticsData {
    pub success_count: Vec<u64>,
    pub failure_count: Vec<u64>,
}

/// Svix's attempt statistics of an application.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptStatisticsResponse {
    pub start_date: DateTime<Utc>,
    pub end_date: DateTime<Utc>,
    pub period: StatisticsPeriod,
    pub data: AttemptStatisticsData,
}

/// Count an application's attempts per period: five minutes for ranges up to a day, a day
/// beyond.
#[utoipa::path(get, path = "/stats/app/{app_id}/attempt", tag = "Statistics",
    params(("app_id" = String, Path), AttemptStatisticsQuery),
    responses((status = 200, body = AttemptStatisticsResponse), (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn app_attempt_statistics(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiQuery(query): ApiQuery<AttemptStatisticsQuery>,
) -> ApiResult<Json<AttemptStatisticsResponse>> {
    let app = state.app_for(&caller, &app_id).await?;
    let end = query.end_date.unwrap_or_else(|| state.clock.now());
    let start = query.start_date.unwrap_or(end - TimeDelta::days(7));
    let (period, step) = if end - start <= TimeDelta::days(1) {
        (StatisticsPeriod::FiveMinutes, TimeDelta::minutes(5))
    } else {
        (StatisticsPeriod::OneDay, TimeDelta::days(1))
    };
    let series = Series::read(&state, &app.id, None, start, end, step, None).await?;
    let total = series.total();
    Ok(Json(AttemptStatisticsResponse {
        start_date: series.start,
        end_date: end,
        period,
        data: AttemptStatisticsData {
            success_count: total.iter().map(|c| c.succeeded).collect(),
            failure_count: total.iter().map(Counts::failed).collect(),
        },
    }))
}

/// A Herald series query. Give `range` or `since` (and optionally `until`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// `1h`, `24h`, `7d` or `30d`, ending now (or at `until`).
    pub range: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Bucket width: `1m`, `5m`, `15m`, `30m`, `1h`, `3h`, `6h`, `12h` or `1d`; chosen from
    /// the range when absent (1h: 1m, 24h: 1h, 7d: 6h, 30d: 1d).
    pub granularity: Option<String>,
    /// Also break the series down by any of `endpoint`, `event_type`, `status_code`
    /// (comma-separated).
    pub group_by: Option<Vec<String>>,
    /// Only this endpoint's attempts.
    pub endpoint_id: Option<String>,
}

/// Totals of a series (or of one of its groups).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeasuresOut {
    pub attempts: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Percent of attempts that succeeded; absent without attempts.
    pub success_rate: Option<f64>,
    /// Percent of attempts that failed; absent without attempts.
    pub error_rate: Option<f64>,
    pub latency_mean_ms: Option<f64>,
    /// Latency percentiles, estimated from a histogram (bounds 5 ms to 30 s).
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

impl MeasuresOut {
    fn of(c: &Counts) -> Self {
        let rounded = |x: Option<f64>| x.map(|x| (x * 10.0).round() / 10.0);
        Self {
            attempts: c.attempts,
            succeeded: c.succeeded,
            failed: c.failed(),
            success_rate: rounded(c.success_rate()),
            error_rate: rounded(c.success_rate().map(|s| 100.0 - s)),
            latency_mean_ms: rounded(
                (c.attempts > 0).then(|| c.duration_ms as f64 / c.attempts as f64),
            ),
            latency_p50_ms: rounded(c.latency_quantile(0.50)),
            latency_p95_ms: rounded(c.latency_quantile(0.95)),
            latency_p99_ms: rounded(c.latency_quantile(0.99)),
        }
    }
}

/// One value per bucket of each measure.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PointsOut {
    pub attempts: Vec<u64>,
    pub succeeded: Vec<u64>,
    pub failed: Vec<u64>,
    pub error_rate: Vec<Option<f64>>,
    pub latency_p50_ms: Vec<Option<f64>>,
    pub latency_p95_ms: Vec<Option<f64>>,
    pub latency_p99_ms: Vec<Option<f64>>,
}

impl PointsOut {
    fn of(buckets: &[Counts]) -> Self {
        let each = |f: &dyn Fn(MeasuresOut) -> Option<f64>| {
            buckets.iter().map(|c| f(MeasuresOut::of(c))).collect()
        };
        Self {
            attempts: buckets.iter().map(|c| c.attempts).collect(),
            succeeded: buckets.iter().map(|c| c.succeeded).collect(),
            failed: buckets.iter().map(Counts::failed).collect(),
            error_rate: each(&|m| m.error_rate),
            latency_p50_ms: each(&|m| m.latency_p50_ms),
            latency_p95_ms: each(&|m| m.latency_p95_ms),
            latency_p99_ms: each(&|m| m.latency_p99_ms),
        }
    }
}

/// A series: all attempts, or one group's.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesOut {
    /// The group (an endpoint id, event type or status code); absent for the whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub totals: MeasuresOut,
    pub points: PointsOut,
    /// For endpoint groups: `healthy`, `degraded`, `failing`, or `unknown` without
    /// attempts (thresholds in `[health]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<&'static str>,
}

/// A page's statistics in one answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsSeriesOut {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub granularity: String,
    /// The start of each bucket.
    pub buckets: Vec<DateTime<Utc>>,
    /// Messages the application published in the range (without `endpoint_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
    pub total: SeriesOut,
    /// Per asked dimension, one series per group, most attempts first.
    pub groups: BTreeMap<String, Vec<SeriesOut>>,
}

/// Delivery statistics of an application (or one endpoint) over time, grouped as asked:
/// attempts, successes, failures, error rate and latency percentiles per bucket.
#[utoipa::path(get, path = "/app/{app_id}/stats/series", tag = "Statistics",
    params(("app_id" = String, Path), SeriesQuery),
    responses((status = 200, body = StatsSeriesOut), (status = 404, body = HttpErrorOut), (status = 422, body = HttpValidationError)))]
async fn app_stats_series(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiQuery(query): ApiQuery<SeriesQuery>,
) -> ApiResult<Json<StatsSeriesOut>> {
    let app = state.app_for(&caller, &app_id).await?;
    let endpoint_id = match &query.endpoint_id {
        Some(id) => Some(state.any_endpoint_for(&caller, &app.id, id).await?.1.id),
        None => None,
    };
    let (since, until, default_step) = range_of(&query, state.clock.now())?;
    let step = step_of(&query, default_step, since, until)?;
    let dimensions = comma_list("group_by", query.group_by.as_deref())?
        .unwrap_or_default()
        .iter()
        .map(|d| dimension(d))
        .collect::<ApiResult<Vec<_>>>()?;
    let endpoint = endpoint_id.as_deref();
    // The whole, each asked dimension and the message count are independent reads: run
    // them together, so the page waits for the slowest, not for their sum.
    let read = |group_by| Series::read(&state, &app.id, endpoint, since, until, step, group_by);
    let messages = async {
        match endpoint {
            Some(_) => Ok(None),
            None => Ok(Some(
                state.store.count_messages(&app.id, since, until).await?,
            )),
        }
    };
    let (whole, grouped, messages) = tokio::try_join!(
        read(None),
        futures_util::future::try_join_all(dimensions.iter().map(|d| read(Some(*d)))),
        messages,
    )?;
    let mut groups = BTreeMap::new();
    let thresholds = &state.config.health;
    for (dimension, series) in dimensions.into_iter().zip(grouped) {
        let out = series_out(dimension, &series, thresholds);
        groups.insert(dimension.name().to_owned(), out);
    }
    let total = whole.total();
    Ok(Json(StatsSeriesOut {
        since: whole.start,
        until,
        granularity: span_name(step),
        buckets: whole.bucket_starts(),
        messages,
        total: SeriesOut {
            key: None,
            totals: MeasuresOut::of(&sum(&total)),
            points: PointsOut::of(&total),
            health: None,
        },
        groups,
    }))
}

/// The width of a query's buckets: the one it asks for, or the range's default; never so
/// fine that the range has more than `MAX_BUCKETS`.
fn step_of(
    query: &SeriesQuery,
    default_step: TimeDelta,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> ApiResult<TimeDelta> {
    let step = match &query.granularity {
        Some(g) => parse_span(g).ok_or_else(|| {
            ApiError::invalid(
                "granularity",
                "must be 1m, 5m, 15m, 30m, 1h, 3h, 6h, 12h or 1d",
            )
        })?,
        None => default_step,
    };
    if (until - since).num_seconds() / step.num_seconds() > MAX_BUCKETS {
        return Err(ApiError::invalid(
            "granularity",
            format!("too fine for the range: at most {MAX_BUCKETS} buckets"),
        ));
    }
    Ok(step)
}

/// One series a group of `dimension`, most attempts first; with their health for
/// endpoints.
fn series_out(
    dimension: Dimension,
    series: &Series,
    thresholds: &HealthThresholds,
) -> Vec<SeriesOut> {
    let mut out: Vec<SeriesOut> = series
        .groups()
        .into_iter()
        .map(|(key, buckets)| {
            let totals = sum(&buckets);
            SeriesOut {
                health: (dimension == Dimension::Endpoint).then(|| health(&totals, thresholds)),
                totals: MeasuresOut::of(&totals),
                points: PointsOut::of(&buckets),
                key,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.totals
            .attempts
            .cmp(&a.totals.attempts)
            .then(a.key.cmp(&b.key))
    });
    out
}

/// `since`, `until` and the default bucket width of a query.
fn range_of(
    query: &SeriesQuery,
    now: DateTime<Utc>,
) -> ApiResult<(DateTime<Utc>, DateTime<Utc>, TimeDelta)> {
    let until = query.until.unwrap_or(now);
    let (since, step) = match (&query.range, query.since) {
        (Some(range), _) => {
            let (length, step) = match range.as_str() {
                "1h" => (TimeDelta::hours(1), TimeDelta::minutes(1)),
                // Each default reads the coarsest rollup that fits it: minutes for an
                // hour, hours for a day or a week, days for a month.
                "24h" => (TimeDelta::hours(24), TimeDelta::hours(1)),
                "7d" => (TimeDelta::days(7), TimeDelta::hours(6)),
                "30d" => (TimeDelta::days(30), TimeDelta::days(1)),
                _ => return Err(ApiError::invalid("range", "must be 1h, 24h, 7d or 30d")),
            };
            (until - length, step)
        }
        (None, Some(since)) => {
            let length = until - since;
            let step = [1, 5, 15, 30, 60, 180, 360, 720, 1440]
                .into_iter()
                .map(TimeDelta::minutes)
                .find(|s| length.num_seconds() / s.num_seconds() <= 120)
                .unwrap_or(TimeDelta::days(1));
            (since, step)
        }
        (None, None) => return Err(ApiError::invalid("range", "give `range` or `since`")),
    };
    if since >= until {
        return Err(ApiError::invalid("since", "must be before `until`"));
    }
    if until - since > MAX_RANGE {
        return Err(ApiError::invalid(
            "since",
            "the range may cover at most 400 days",
        ));
    }
    Ok((since, until, step))
}

fn parse_span(text: &str) -> Option<TimeDelta> {
    Some(match text {
        "1m" => TimeDelta::minutes(1),
        "5m" => TimeDelta::minutes(5),
        "15m" => TimeDelta::minutes(15),
        "30m" => TimeDelta::minutes(30),
        "1h" => TimeDelta::hours(1),
        "3h" => TimeDelta::hours(3),
        "6h" => TimeDelta::hours(6),
        "12h" => TimeDelta::hours(12),
        "1d" => TimeDelta::days(1),
        _ => return None,
    })
}

fn span_name(span: TimeDelta) -> String {
    match span.num_minutes() {
        m if m % 1440 == 0 => format!("{}d", m / 1440),
        m if m % 60 == 0 => format!("{}h", m / 60),
        m => format!("{m}m"),
    }
}

fn dimension(name: &str) -> ApiResult<Dimension> {
    match name {
        "endpoint" => Ok(Dimension::Endpoint),
        "event_type" => Ok(Dimension::EventType),
        "status_code" => Ok(Dimension::StatusCode),
        _ => Err(ApiError::invalid(
            "group_by",
            "must name endpoint, event_type or status_code",
        )),
    }
}

fn sum(buckets: &[Counts]) -> Counts {
    buckets.iter().fold(Counts::default(), |mut total, c| {
        total.merge(c);
        total
    })
}

/// An endpoint's health from its attempts in the range.
fn health(totals: &Counts, limits: &HealthThresholds) -> &'static str {
    let (Some(rate), Some(p95)) = (totals.success_rate(), totals.latency_quantile(0.95)) else {
        return "unknown";
    };
    if rate < limits.failing_below_percent || p95 > limits.failing_p95_ms as f64 {
        "failing"
    } else if rate < limits.degraded_below_percent || p95 > limits.degraded_p95_ms as f64 {
        "degraded"
    } else {
        "healthy"
    }
}

/// Rollup rows folded into buckets of `step` from `start`.
struct Series {
    start: DateTime<Utc>,
    step: TimeDelta,
    len: usize,
    rows: Vec<StatsRow>,
}

impl Series {
    async fn read(
        state: &AppState,
        app_id: &str,
        endpoint_id: Option<&str>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        step: TimeDelta,
        group_by: Option<Dimension>,
    ) -> ApiResult<Self> {
        let start = since.duration_trunc(step).unwrap_or(since);
        let len = ((until - start).num_seconds() + step.num_seconds() - 1) / step.num_seconds();
        let rows = state
            .store
            .attempt_stats(&StatsQuery {
                app_id: app_id.to_owned(),
                endpoint_id: endpoint_id.map(str::to_owned),
                since: start,
                until,
                group_by,
                resolution: Resolution::for_step(step),
            })
            .await?;
        Ok(Self {
            start,
            step,
            len: len.max(1) as usize,
            rows,
        })
    }

    fn index(&self, at: DateTime<Utc>) -> usize {
        (((at - self.start).num_seconds() / self.step.num_seconds()).max(0) as usize)
            .min(self.len - 1)
    }

    fn bucket_starts(&self) -> Vec<DateTime<Utc>> {
        (0..self.len)
            .map(|i| self.start + self.step * i as i32)
            .collect()
    }

    /// Every row in its bucket, groups added together.
    fn total(&self) -> Vec<Counts> {
        let mut buckets = vec![Counts::default(); self.len];
        for row in &self.rows {
            buckets[self.index(row.bucket)].merge(&row.counts);
        }
        buckets
    }

    /// Each group's buckets.
    fn groups(&self) -> BTreeMap<Option<String>, Vec<Counts>> {
        let mut groups: BTreeMap<Option<String>, Vec<Counts>> = BTreeMap::new();
        for row in &self.rows {
            let buckets = groups
                .entry(row.group.clone())
                .or_insert_with(|| vec![Counts::default(); self.len]);
            buckets[self.index(row.bucket)].merge(&row.counts);
        }
        groups
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(app_attempt_statistics))
        .routes(routes!(app_stats_series))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(ok: u64, failed: u64, ms: i64) -> Counts {
        let mut c = Counts::default();
        for i in 0..ok + failed {
            c.add_attempt(i < ok, ms);
        }
        c
    }

    #[test]
    fn health_follows_the_thresholds() {
        let limits = HealthThresholds::default();
        assert_eq!(health(&Counts::default(), &limits), "unknown");
        assert_eq!(health(&counts(100, 0, 20), &limits), "healthy");
        assert_eq!(health(&counts(98, 2, 20), &limits), "degraded");
        assert_eq!(health(&counts(0, 10, 20), &limits), "failing");
        assert_eq!(health(&counts(100, 0, 8_000), &limits), "failing", "slow");
    }

    #[test]
    fn ranges_pick_a_granularity_and_refuse_nonsense() {
        let now = Utc::now();
        let q = |range: &str| SeriesQuery {
            range: Some(range.into()),
            ..SeriesQuery::default()
        };
        assert_eq!(range_of(&q("24h"), now).unwrap().2, TimeDelta::hours(1));
        assert_eq!(range_of(&q("30d"), now).unwrap().2, TimeDelta::days(1));
        assert!(range_of(&q("2y"), now).is_err());
        assert!(range_of(&SeriesQuery::default(), now).is_err());
        assert_eq!(span_name(TimeDelta::hours(12)), "12h");
        assert_eq!(span_name(TimeDelta::days(1)), "1d");
    }
}
