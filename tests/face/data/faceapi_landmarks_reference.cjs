// face-api 1.7.15 itself (TF.js 4, CPU backend) on raw RGB images: faces with the full AND the tiny
// 68-point landmark net, each with its descriptor. Adapted from shared/oracles/faceapi_reference.cjs.
// Input: FOLDER with NAME.rgb (uint8 H x W x 3, row-major) and meta.json {"NAME": [H, W, 3], ...}.
// Usage: NODE_PATH=<install>/node_modules node faceapi_landmarks_reference.cjs FOLDER OUT.json
const fs = require('fs');
const path = require('path');
const { loadFaceApi } = require(path.join(__dirname, '..', '..', 'faceapi_node.cjs'));
(async () => {
  const [folder, outFile] = process.argv.slice(2);
  const faceapi = await loadFaceApi();
  const meta = JSON.parse(fs.readFileSync(path.join(folder, 'meta.json')));
  const out = {};
  for (const [name, shape] of Object.entries(meta)) {
    const raw = fs.readFileSync(path.join(folder, name + '.rgb'));
    const t = faceapi.tf.tensor3d(new Uint8Array(raw), shape, 'int32');
    const opts = new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 });
    out[name] = { shape };
    for (const [key, tiny] of [['faces', false], ['faces_tiny', true]]) {
      const dets = await faceapi.detectAllFaces(t, opts).withFaceLandmarks(tiny).withFaceDescriptors();
      out[name][key] = dets.map(d => ({
        box: [d.detection.box.x, d.detection.box.y, d.detection.box.width, d.detection.box.height],  // x, y, w, h
        score: d.detection.score,
        landmarks: d.landmarks.positions.map(p => [p.x, p.y]),
        aligned_box: [d.alignedRect.box.x, d.alignedRect.box.y, d.alignedRect.box.width, d.alignedRect.box.height],
        descriptor: Array.from(d.descriptor),
      }));
    }
    t.dispose();
  }
  fs.writeFileSync(outFile, JSON.stringify(out));
})();
