// Track ids across frames and smoothed probabilities, as ferlab.deploy.tracking does for `ferlab live`.

export function iou(a, b) {
  const ix = Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union > 0 ? inter / union : 0;
}

export function centreDistance(a, b) {
  const dx = a[0] + a[2] / 2 - (b[0] + b[2] / 2);
  const dy = a[1] + a[3] / 2 - (b[1] + b[3] / 2);
  const side = (Math.max(a[2], a[3]) + Math.max(b[2], b[3])) / 2;
  return side > 0 ? Math.hypot(dx, dy) / side : Infinity;
}

// Greedy matching: IoU matches first (best first), then the nearest centres; a track unseen for
// maxMissed frames is dropped.
export class FaceTracker {
  constructor({ iouThreshold = 0.3, maxDistance = 0.6, maxMissed = 5 } = {}) {
    Object.assign(this, { iouThreshold, maxDistance, maxMissed });
    this.tracks = new Map();
    this.nextId = 1;
  }

  update(boxes) {
    const pairs = [];
    for (const [tid, track] of this.tracks) {
      boxes.forEach((box, j) => {
        const overlap = iou(track.box, box);
        if (overlap >= this.iouThreshold) pairs.push([-1 - overlap, tid, j]);
        else {
          const distance = centreDistance(track.box, box);
          if (distance <= this.maxDistance) pairs.push([distance, tid, j]);
        }
      });
    }
    pairs.sort((p, q) => p[0] - q[0] || p[1] - q[1] || p[2] - q[2]);
    const ids = new Array(boxes.length).fill(null);
    const used = new Set();
    for (const [, tid, j] of pairs) {
      if (used.has(tid) || ids[j] !== null) continue;
      ids[j] = tid;
      used.add(tid);
      Object.assign(this.tracks.get(tid), { box: boxes[j], missed: 0 });
    }
    for (const [tid, track] of [...this.tracks]) {
      if (!used.has(tid) && ++track.missed > this.maxMissed) this.tracks.delete(tid);
    }
    boxes.forEach((box, j) => {
      if (ids[j] !== null) return;
      ids[j] = this.nextId;
      this.tracks.set(this.nextId++, { box, missed: 0 });
    });
    return ids;
  }
}

// p <- alpha * p_new + (1 - alpha) * p, per track (alpha = 1: no smoothing). alpha has no default here: the
// page takes the server manifest's "smoothing" (ferlab.deploy.tracking.DEFAULT_SMOOTHING owns the number).
export class EMASmoother {
  constructor(alpha) {
    if (!(alpha > 0 && alpha <= 1)) throw new Error(`EMASmoother: alpha must be in (0, 1], got ${alpha}`);
    this.alpha = alpha;
    this.state = new Map();
  }

  update(key, probabilities) {
    const previous = this.state.get(key);
    const smoothed = previous ? probabilities.map((p, i) => this.alpha * p + (1 - this.alpha) * previous[i]) : Array.from(probabilities);
    this.state.set(key, smoothed);
    return smoothed;
  }

  keepOnly(keys) {
    for (const key of [...this.state.keys()]) if (!keys.has(key)) this.state.delete(key);
  }
}
