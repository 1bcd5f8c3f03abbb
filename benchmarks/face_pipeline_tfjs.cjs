// face-api 1.7.15 itself (TF.js 4, CPU backend, node): time detectAllFaces + withFaceLandmarks +
// withFaceDescriptors on one raw RGB image. Run by benchmarks/face_pipeline.py --tfjs-node-modules DIR.
// Usage: NODE_PATH=<install>/node_modules node face_pipeline_tfjs.cjs IMAGE.rgb H W REPEATS WARMUP TINY(0|1)
// Prints one JSON line: {"times_ms": [...], "faces": n, "descriptor": [...]}.
const tf = require('@tensorflow/tfjs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const fs = require('fs');
const path = require('path');
(async () => {
  const [file, h, w, repeats = '5', warmup = '1', tiny = '0'] = process.argv.slice(2);
  await tf.setBackend('cpu'); await tf.ready();
  const dir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  async function load(net, name) {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, name + '-weights_manifest.json')));
    const buf = Buffer.concat(manifest.flatMap(g => g.paths.map(p => fs.readFileSync(path.join(dir, p)))));
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
    net.loadFromWeightMap(faceapi.tf.io.decodeWeights(ab, manifest.flatMap(g => g.weights)));
  }
  await load(faceapi.nets.tinyFaceDetector, 'tiny_face_detector_model');
  await load(faceapi.nets.faceRecognitionNet, 'face_recognition_model');
  await load(faceapi.nets.faceLandmark68Net, 'face_landmark_68_model');
  await load(faceapi.nets.faceLandmark68TinyNet, 'face_landmark_68_tiny_model');
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
