// Shared by the node scripts that run face-api 1.7.15 itself (TF.js 4, CPU backend):
// tests/face/data/faceapi_landmarks_reference.cjs and benchmarks/face_pipeline_tfjs.cjs.
// Needs NODE_PATH=<install>/node_modules with @vladmandic/face-api@1.7.15 and @tensorflow/tfjs@4.
// loadFaceApi() selects the CPU backend and loads the Tiny Face Detector, the recognition net and
// both 68-point landmark nets from the weights shipped in face-api's own model/ folder.
const tf = require('@tensorflow/tfjs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const fs = require('fs');
const path = require('path');

async function loadFaceApi() {
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
  return faceapi;
}

module.exports = { loadFaceApi };
