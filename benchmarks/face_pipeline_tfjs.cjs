// face-api 1.7.15 itself (TF.js 4, CPU backend, node): time detectAllFaces + withFaceLandmarks +
// withFaceDescriptors on one raw RGB image. Run by benchmarks/face_pipeline.py --tfjs-node-modules DIR.
// Usage: NODE_PATH=<install>/node_modules node face_pipeline_tfjs.cjs IMAGE.rgb H W REPEATS WARMUP TINY(0|1)
// Prints one JSON line: {"times_ms": [...], "faces": n, "descriptor": [...]}.
const fs = require('fs');
const path = require('path');
const { loadFaceApi } = require(path.join(__dirname, '..', 'tests', 'faceapi_node.cjs'));
(async () => {
  const [file, h, w, repeats = '5', warmup = '1', tiny = '0'] = process.argv.slice(2);
  const faceapi = await loadFaceApi();
  const t = faceapi.tf.tensor3d(new Uint8Array(fs.readFileSync(file)), [+h, +w, 3], 'int32');
  const opts = new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 });
  const run = () => faceapi.detectAllFaces(t, opts).withFaceLandmarks(tiny === '1').withFaceDescriptors();
  for (let i = 0; i < +warmup; i++) await run();
  const times = [];
  let dets;
  for (let i = 0; i < +repeats; i++) {
    const t0 = process.hrtime.bigint();
    dets = await run();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  console.log(JSON.stringify({ times_ms: times, faces: dets.length, descriptor: dets.length ? Array.from(dets[0].descriptor) : [] }));
})();
