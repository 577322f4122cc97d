//! Face detection: MediaPipe BlazeFace short-range, run on the CPU by tract.
//!
//! This module wraps the BlazeFace "front" model (128x128 input, faces of about 80 px and more in
//! a 640x480 frame), which is compiled into the binary (`model/face_detection_front_128x128.onnx`,
//! Apache-2.0, see `model/PROVENANCE.md`), so nothing is loaded at run time. [`Detector::detect`]
//! takes a [`ModelInput`] made by [`convert`](crate::convert) and returns [`Face`]s in frame
//! pixels: the model's 896 anchor predictions are decoded, those with a score of at least
//! [`MIN_SCORE`] kept, overlapping ones merged by weighted non-maximum suppression (MediaPipe's
//! own post-processing) and mapped back through the [`Letterbox`].
//!
//! # How to use
//!
//! ```no_run
//! use client_demo::convert::{Frame, ModelInput};
//! use client_demo::detector::Detector;
//!
//! # fn frame() -> Frame<'static> { unimplemented!() }
//! // Once, on the worker thread (optimizing the model takes a moment):
//! let detector = Detector::new()?;
//! let mut input = ModelInput::new();
//! // Per frame:
//! let letterbox = input.convert(&frame())?;
//! for face in detector.detect(&input, &letterbox)? {
//!     println!("face {:?} score {:.2}", face.bbox, face.score);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `Detector` is `Send + Sync`; `detect` takes `&self`.

use std::error::Error as StdError;

use thiserror::Error;
use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::convert::{INPUT_SIZE, Letterbox, ModelInput};

/// The ONNX model, embedded so the binary is self-contained.
static MODEL: &[u8] = include_bytes!("../model/face_detection_front_128x128.onnx");

/// Detections scoring below this (after the sigmoid) are dropped.
pub const MIN_SCORE: f32 = 0.5;

/// Detections overlapping a better one by more than this intersection-over-union are merged
/// into it.
const NMS_IOU: f32 = 0.3;

/// The model's outputs, by name: scores and regressors for the 16x16 grid (512 anchors), then
/// for the 8x8 grid (384 anchors).
const OUTPUTS: [&str; 4] = ["Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"];

/// Values per anchor in the regressor outputs: box centre offset and size, 6 keypoints.
const REGRESSORS: usize = 16;

/// Number of anchors: 16x16 cells with 2 anchors each, then 8x8 cells with 6 each.
const ANCHORS: usize = 16 * 16 * 2 + 8 * 8 * 6;

/// Why the detector could not be built or run.
#[derive(Debug, Error)]
pub enum DetectorError {
    /// The embedded model could not be parsed, analysed or optimized by tract.
    #[error("loading the face detection model")]
    Load(#[source] Box<dyn StdError + Send + Sync>),
    /// tract failed running the model.
    #[error("running the face detection model")]
    Run(#[source] Box<dyn StdError + Send + Sync>),
    /// An output of the model did not have the expected shape.
    #[error("model output {index} has {len} values, {expected} expected")]
    OutputShape {
        /// Index of the output, in the order of the model's `Identity*` outputs.
        index: usize,
        /// Values it has.
        len: usize,
        /// Values expected.
        expected: usize,
    },
}

/// A point in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    /// Horizontal position, 0.0 at the frame's left edge.
    pub x: f32,
    /// Vertical position, 0.0 at the frame's top edge.
    pub y: f32,
}

/// An axis-aligned box in frame pixels. It may extend past the frame's edges when a face does.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BBox {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge.
    pub x1: f32,
    /// Bottom edge.
    pub y1: f32,
}

/// The six BlazeFace keypoints, in the order of [`Face::keypoints`]. Left and right are the
/// person's own (the person's right eye is on the image's left for a face looking at the camera).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keypoint {
    /// The person's right eye.
    RightEye = 0,
    /// The person's left eye.
    LeftEye = 1,
    /// Tip of the nose.
    Nose = 2,
    /// Centre of the mouth.
    Mouth = 3,
    /// The person's right ear tragion.
    RightEar = 4,
    /// The person's left ear tragion.
    LeftEar = 5,
}

/// One detected face, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Face {
    /// The face's bounding box.
    pub bbox: BBox,
    /// Confidence, 0.0..=1.0 (at least [`MIN_SCORE`]).
    pub score: f32,
    /// Keypoints, indexed by [`Keypoint`].
    pub keypoints: [Point; 6],
}

impl Face {
    /// The keypoint `which`.
    pub fn keypoint(&self, which: Keypoint) -> Point {
        self.keypoints[which as usize]
    }
}

/// A candidate in normalized model coordinates (0..1 across the square input).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f32,
    /// x0, y0, x1, y1.
    bbox: [f32; 4],
    /// x, y of the six keypoints.
    keypoints: [f32; 12],
}

/// The BlazeFace short-range detector, optimized and ready to run.
pub struct Detector {
    plan: TypedSimplePlan<TypedModel>,
    /// Anchor centres (x, y), normalized, in output order.
    anchors: Vec<(f32, f32)>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The plan's own Debug prints the whole graph.
        f.debug_struct("Detector")
            .field("anchors", &self.anchors.len())
            .finish_non_exhaustive()
    }
}

fn load_error(e: TractError) -> DetectorError {
    DetectorError::Load(e.into())
}

impl Detector {
    /// Parses and optimizes the embedded model. Takes tens to hundreds of milliseconds: do it once.
    pub fn new() -> Result<Detector, DetectorError> {
        let onnx = tract_onnx::onnx();
        let mut proto = onnx
            .proto_model_for_read(&mut &MODEL[..])
            .map_err(load_error)?;
        if let Some(graph) = proto.graph.as_mut() {
            give_constant_of_shape_f32_value(graph);
        }
        let size = INPUT_SIZE as i64;
        let plan = onnx
            .model_for_proto_model(&proto)
            .and_then(|model| model.with_output_names(OUTPUTS))
            .and_then(|model| model.with_input_fact(0, f32::fact([1, size, size, 3]).into()))
            .and_then(|model| model.into_optimized())
            .and_then(|model| model.into_runnable())
            .map_err(load_error)?;
        Ok(Detector {
            plan,
            anchors: anchors(),
        })
    }

    /// Runs the model on `input` and returns the faces found, best first, in the pixels of the
    /// frame that `letterbox` belongs to.
    pub fn detect(
        &self,
        input: &ModelInput,
        letterbox: &Letterbox,
    ) -> Result<Vec<Face>, DetectorError> {
        let size = INPUT_SIZE;
        let tensor = Tensor::from_shape(&[1, size, size, 3], input.as_slice())
            .map_err(|e| DetectorError::Run(e.into()))?;
        let outputs = self
            .plan
            .run(tvec!(tensor.into()))
            .map_err(|e| DetectorError::Run(e.into()))?;
        let output = |index: usize, expected: usize| -> Result<&[f32], DetectorError> {
            let values = outputs
                .get(index)
                .and_then(|o| o.as_slice::<f32>().ok())
                .unwrap_or_default();
            if values.len() != expected {
                return Err(DetectorError::OutputShape {
                    index,
                    len: values.len(),
                    expected,
                });
            }
            Ok(values)
        };
        let scores = output(0, 512)?.iter().chain(output(1, 384)?);
        let regressors = output(2, 512 * REGRESSORS)?
            .chunks_exact(REGRESSORS)
            .chain(output(3, 384 * REGRESSORS)?.chunks_exact(REGRESSORS));

        let mut candidates: Vec<Candidate> = scores
            .zip(regressors)
            .zip(&self.anchors)
            .filter_map(|((&logit, r), &anchor)| decode(logit, r, anchor))
            .collect();
        Ok(weighted_nms(&mut candidates)
            .into_iter()
            .map(|c| to_frame(&c, letterbox))
            .collect())
    }
}

/// Gives every `ConstantOfShape` node without a `value` attribute an explicit f32 zero.
///
/// ONNX defines the default as a float32 zero, but tract (0.22, 0.23) defaults to an f64 zero,
/// and analysis of this model then fails with "Impossible to unify F32 with F64".
fn give_constant_of_shape_f32_value(graph: &mut pb::GraphProto) {
    for node in &mut graph.node {
        if node.op_type == "ConstantOfShape" && !node.attribute.iter().any(|a| a.name == "value") {
            node.attribute.push(pb::AttributeProto {
                name: "value".into(),
                r#type: pb::attribute_proto::AttributeType::Tensor as i32,
                t: Some(pb::TensorProto {
                    dims: vec![1],
                    data_type: pb::tensor_proto::DataType::Float as i32,
                    float_data: vec![0.0],
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
}

/// Anchor centres in output order: a 16x16 grid with 2 anchors per cell, then an 8x8 grid with 6
/// per cell, cells row-major.
fn anchors() -> Vec<(f32, f32)> {
    let mut anchors = Vec::with_capacity(ANCHORS);
    for (cells, per_cell) in [(16, 2), (8, 6)] {
        for y in 0..cells {
            for x in 0..cells {
                let centre = (
                    (x as f32 + 0.5) / cells as f32,
                    (y as f32 + 0.5) / cells as f32,
                );
                anchors.extend(std::iter::repeat_n(centre, per_cell));
            }
        }
    }
    anchors
}

/// One anchor's prediction, if its score reaches [`MIN_SCORE`].
fn decode(logit: f32, r: &[f32], (ax, ay): (f32, f32)) -> Option<Candidate> {
    let score = 1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp());
    if score.is_nan() || score < MIN_SCORE {
        return None;
    }
    let scale = INPUT_SIZE as f32;
    let (cx, cy) = (ax + r[0] / scale, ay + r[1] / scale);
    let (w, h) = (r[2] / scale, r[3] / scale);
    let keypoints = std::array::from_fn(|i| {
        let anchor = if i % 2 == 0 { ax } else { ay };
        anchor + r[4 + i] / scale
    });
    Some(Candidate {
        score,
        bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
        keypoints,
    })
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// MediaPipe's weighted non-maximum suppression: the best remaining candidate absorbs every
/// candidate overlapping it by more than [`NMS_IOU`]; its box and keypoints become their
/// score-weighted mean, its score stays its own.
fn weighted_nms(candidates: &mut Vec<Candidate>) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut faces = Vec::new();
    while let Some(best) = candidates.first().copied() {
        let (overlapping, rest): (Vec<Candidate>, Vec<Candidate>) = candidates
            .drain(..)
            .partition(|c| iou(&best.bbox, &c.bbox) > NMS_IOU);
        *candidates = rest;
        // `best` overlaps itself fully, so `overlapping` is never empty and `total` > 0.
        let total: f32 = overlapping.iter().map(|c| c.score).sum();
        let mut merged = Candidate {
            score: best.score,
            bbox: [0.0; 4],
            keypoints: [0.0; 12],
        };
        for c in &overlapping {
            let w = c.score / total;
            for (m, v) in merged.bbox.iter_mut().zip(c.bbox) {
                *m += w * v;
            }
            for (m, v) in merged.keypoints.iter_mut().zip(c.keypoints) {
                *m += w * v;
            }
        }
        faces.push(merged);
    }
    faces
}

fn to_frame(c: &Candidate, letterbox: &Letterbox) -> Face {
    let point = |x: f32, y: f32| {
        let (x, y) = letterbox.to_frame(x, y);
        Point { x, y }
    };
    let p0 = point(c.bbox[0], c.bbox[1]);
    let p1 = point(c.bbox[2], c.bbox[3]);
    Face {
        bbox: BBox {
            x0: p0.x,
            y0: p0.y,
            x1: p1.x,
            y1: p1.y,
        },
        score: c.score,
        keypoints: std::array::from_fn(|k| point(c.keypoints[2 * k], c.keypoints[2 * k + 1])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_the_output_order() {
        let a = anchors();
        assert_eq!(a.len(), ANCHORS);
        assert_eq!(a[0], (0.5 / 16.0, 0.5 / 16.0));
        assert_eq!(a[1], a[0]);
        assert_eq!(a[2], (1.5 / 16.0, 0.5 / 16.0));
        assert_eq!(a[32], (0.5 / 16.0, 1.5 / 16.0));
        assert_eq!(a[511], (15.5 / 16.0, 15.5 / 16.0));
        assert_eq!(a[512], (0.5 / 8.0, 0.5 / 8.0));
        assert_eq!(a[517], a[512]);
        assert_eq!(a[518], (1.5 / 8.0, 0.5 / 8.0));
        assert_eq!(a[895], (7.5 / 8.0, 7.5 / 8.0));
    }

    #[test]
    fn decode_applies_sigmoid_offsets_and_threshold() {
        let mut r = [0.0f32; 16];
        r[0] = 12.8; // centre x + 0.1
        r[1] = -6.4; // centre y - 0.05
        r[2] = 25.6; // width 0.2
        r[3] = 51.2; // height 0.4
        r[4] = 1.28; // right eye x + 0.01
        r[15] = -1.28; // left ear y - 0.01
        let c = decode(0.0, &r, (0.5, 0.5)).expect("sigmoid(0) = 0.5 is kept");
        assert_eq!(c.score, 0.5);
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert!(
            close(c.bbox[0], 0.5) && close(c.bbox[2], 0.7),
            "{:?}",
            c.bbox
        );
        assert!(
            close(c.bbox[1], 0.25) && close(c.bbox[3], 0.65),
            "{:?}",
            c.bbox
        );
        assert!(close(c.keypoints[0], 0.51) && close(c.keypoints[1], 0.5));
        assert!(close(c.keypoints[11], 0.49));
        assert!(decode(-0.01, &r, (0.5, 0.5)).is_none());
        assert!(decode(f32::NAN, &r, (0.5, 0.5)).is_none());
        assert!(close(
            decode(1e9, &r, (0.5, 0.5)).map_or(0.0, |c| c.score),
            1.0
        ));
    }

    #[test]
    fn weighted_nms_merges_overlaps_and_keeps_the_rest() {
        let cand = |score, x0: f32| Candidate {
            score,
            bbox: [x0, 0.0, x0 + 0.2, 0.2],
            keypoints: [x0; 12],
        };
        // 0.9 at 0.0 and 0.6 at 0.02 overlap (IoU 0.82); 0.8 at 0.5 stands alone.
        let mut candidates = vec![cand(0.6, 0.02), cand(0.8, 0.5), cand(0.9, 0.0)];
        let faces = weighted_nms(&mut candidates);
        assert_eq!(faces.len(), 2);
        assert_eq!(faces[0].score, 0.9);
        let x0 = (0.9 * 0.0 + 0.6 * 0.02) / 1.5;
        assert!((faces[0].bbox[0] - x0).abs() < 1e-6, "{:?}", faces[0].bbox);
        assert!((faces[0].keypoints[3] - x0).abs() < 1e-6);
        assert_eq!(faces[1].score, 0.8);
        assert_eq!(faces[1].bbox, [0.5, 0.0, 0.7, 0.2]);
    }

    #[test]
    fn faces_map_through_the_letterbox() {
        let c = Candidate {
            score: 0.7,
            bbox: [0.25, 0.25, 0.5, 0.75],
            keypoints: [0.5; 12],
        };
        // 640x480: side 640, 80 rows of padding above.
        let face = to_frame(&c, &Letterbox::for_frame(640, 480));
        assert_eq!(
            face.bbox,
            BBox {
                x0: 160.0,
                y0: 80.0,
                x1: 320.0,
                y1: 400.0
            }
        );
        assert_eq!(
            face.keypoint(Keypoint::LeftEar),
            Point { x: 320.0, y: 240.0 }
        );
        assert_eq!(face.score, 0.7);
    }

    #[test]
    fn detector_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Detector>();
    }
}
