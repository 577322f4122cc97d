//! The `--stats` counters and their `STATS` / `STATS-TOTAL` lines (tests parse them: the format
//! is fixed).

use std::time::{Duration, Instant};

/// What the video source says of its frames, for a stats line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoReport {
    /// Frames the compositor presented.
    pub presented: u64,
    /// Of those, presented ZERO_COPY (scanned out from our buffer).
    pub zero_copy: u64,
    /// Copies per frame outside the library: 1 when frames go through wl_shm.
    pub shm_copies: u64,
    /// Camera: linux-dmabuf imports made (one per capture buffer when the cache works).
    pub imports: Option<u64>,
}

/// Counters for `--stats`.
#[derive(Debug)]
pub struct Stats {
    /// Frames shown.
    pub frames: u64,
    /// Detector results.
    pub detections: u64,
    /// Their conversion and inference time.
    pub detector_time: Duration,
    /// Frames not offered to the detector because it was busy.
    pub skipped: u64,
    /// Camera frames the driver flagged as damaged (not shown).
    pub damaged: u64,
    /// Start of the current interval, and the counters then.
    since: Instant,
    frames_at: u64,
    detections_at: u64,
    time_at: Duration,
}

impl Stats {
    /// Counting from `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            frames: 0,
            detections: 0,
            detector_time: Duration::ZERO,
            skipped: 0,
            damaged: 0,
            since: now,
            frames_at: 0,
            detections_at: 0,
            time_at: Duration::ZERO,
        }
    }

    /// Whether a second has passed since the interval started.
    pub fn interval_over(&self, now: Instant) -> bool {
        now - self.since >= Duration::from_secs(1)
    }

    /// Starts the next interval at `now`.
    pub fn next_interval(&mut self, now: Instant) {
        self.frames_at = self.frames;
        self.detections_at = self.detections;
        self.time_at = self.detector_time;
        self.since = now;
    }

    /// The `STATS` line of the interval up to `now`; `library_copies` is what the library
    /// counted ([`wayheap::accounting::copies`]).
    pub fn line(&self, video: &VideoReport, library_copies: u64, now: Instant) -> String {
        let secs = (now - self.since).as_secs_f64().max(1e-3);
        let detections = self.detections - self.detections_at;
        let detector_ms = if detections > 0 {
            (self.detector_time - self.time_at).as_secs_f64() * 1000.0 / detections as f64
        } else {
            0.0
        };
        let VideoReport {
            presented,
            zero_copy,
            shm_copies,
            imports,
        } = *video;
        let share = if presented > 0 {
            zero_copy as f64 * 100.0 / presented as f64
        } else {
            0.0
        };
        let imports = imports
            .map(|i| format!(" imports={i} damaged={}", self.damaged))
            .unwrap_or_default();
        // Copies of a frame on its way to the compositor: wl_shm hands the compositor memory it
        // must copy from (or upload); the library counts every CPU copy into a dma-buf it makes.
        let copies_per_frame = shm_copies + library_copies / self.frames.max(1);
        format!(
            "STATS fps={:.1} detector_ms={detector_ms:.0} detector_fps={:.1} skipped={} copies_per_frame={copies_per_frame} zero_copy={zero_copy}/{presented} ({share:.0}%) frames={}{imports}",
            (self.frames - self.frames_at) as f64 / secs,
            detections as f64 / secs,
            self.skipped,
            self.frames,
        )
    }

    /// The `STATS-TOTAL` line at the end: every frame and detection so far, over the time since
    /// the last interval started.
    pub fn total_line(&mut self, video: &VideoReport, library_copies: u64, now: Instant) -> String {
        self.frames_at = 0;
        self.detections_at = 0;
        self.time_at = Duration::ZERO;
        self.line(video, library_copies, now)
            .replacen("STATS", "STATS-TOTAL", 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_has_every_field_the_tests_parse() {
        let start = Instant::now();
        let mut s = Stats::new(start);
        s.frames = 60;
        s.detections = 4;
        s.detector_time = Duration::from_millis(100);
        s.skipped = 3;
        let camera = VideoReport {
            presented: 50,
            zero_copy: 25,
            shm_copies: 0,
            imports: Some(4),
        };
        let now = start + Duration::from_secs(2);
        assert!(s.interval_over(now));
        assert_eq!(
            s.line(&camera, 0, now),
            "STATS fps=30.0 detector_ms=25 detector_fps=2.0 skipped=3 copies_per_frame=0 zero_copy=25/50 (50%) frames=60 imports=4 damaged=0"
        );
        s.next_interval(now);
        assert!(!s.interval_over(now + Duration::from_millis(999)));
        s.frames = 90;
        let picture = VideoReport {
            shm_copies: 1,
            ..VideoReport::default()
        };
        let later = now + Duration::from_secs(1);
        assert_eq!(
            s.line(&picture, 0, later),
            "STATS fps=30.0 detector_ms=0 detector_fps=0.0 skipped=3 copies_per_frame=1 zero_copy=0/0 (0%) frames=90"
        );
        // The total counts everything, over the last interval's time.
        assert!(s.total_line(&picture, 180, later).starts_with(
            "STATS-TOTAL fps=90.0 detector_ms=25 detector_fps=4.0 skipped=3 copies_per_frame=3 "
        ));
    }
}
