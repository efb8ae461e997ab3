#!/usr/bin/env node
// An example Node.js client for rnnserve (proto/rnnserve/v1/inference.proto),
// with @grpc/grpc-js and @grpc/proto-loader: the proto is loaded at run time,
// no generated code.
//
//   node example.js [--address HOST:PORT] [--token TOKEN] [--tls-ca CA.pem
//                   [--tls-cert CERT.pem --tls-key KEY.pem]]
//                   [--inputs FILE.json] [--proto-dir DIR] [--check]
//
// It lists the models, classifies a few sequences with a classification model
// (from --inputs, or generated Fashion-MNIST-like images) and prints the top
// classes, then streams the sine model chunk by chunk twice: over a Regress
// stream and with RegressChunk, sending expected_first_step (the session's
// position) with every chunk. --check prints one JSON document with every
// number instead of text, and also probes the exactly-once protocol (a chunk
// resent from its position is replayed; a wrong position is refused); the
// project's tests compare it with PyTorch's outputs. Any error: a message on
// stderr and exit status 1.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const USAGE = `usage: node example.js [options]
  --address HOST:PORT   rnnserve's gRPC address (default localhost:50051)
  --token TOKEN         bearer token, sent as "authorization: Bearer TOKEN"
                        (default: $RNNSERVE_TOKEN, else none)
  --tls-ca FILE         connect with TLS, trusting the CA(s) in this PEM file
  --tls-cert FILE       with --tls-ca and --tls-key: client certificate chain
                        (PEM) for a server that asks for one (mutual TLS)
  --tls-key FILE        the private key (PEM) of --tls-cert
  --inputs FILE         JSON inputs (see README.md); default: generated ones
  --proto-dir DIR       folder holding rnnserve/v1/inference.proto (default:
                        $RNNSERVE_PROTO_DIR, else the repository's proto/)
  --timeout SECONDS     deadline of each call (default 30)
  --check               print one JSON document of results (for tests)`;

// --- Arguments and inputs ---------------------------------------------------

function parseArgs(argv) {
  const args = {
    address: 'localhost:50051',
    token: process.env.RNNSERVE_TOKEN || '',
    tlsCa: '',
    tlsCert: '',
    tlsKey: '',
    inputs: '',
    protoDir: process.env.RNNSERVE_PROTO_DIR ||
        path.join(__dirname, '..', '..', 'proto'),
    timeout: 30,
    check: false,
  };
  const valued = {
    '--address': 'address', '--token': 'token', '--tls-ca': 'tlsCa',
    '--tls-cert': 'tlsCert', '--tls-key': 'tlsKey',
    '--inputs': 'inputs', '--proto-dir': 'protoDir', '--timeout': 'timeout',
  };
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split(/=(.*)/s, 2);
    if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (flag === '--check') {
      args.check = true;
    } else if (flag in valued) {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
        value = argv[++i];
      }
      args[valued[flag]] = value;
    } else {
      throw new Error(`unknown argument '${argv[i]}'\n${USAGE}`);
    }
  }
  if (!args.tlsCert !== !args.tlsKey || (args.tlsCert && !args.tlsCa)) {
    throw new Error('--tls-cert and --tls-key go together, and with --tls-ca');
  }
  args.timeout = Number(args.timeout);
  if (!(args.timeout > 0)) throw new Error('--timeout must be a positive number');
  return args;
}

// Fashion-MNIST-like 28x28 images, pixels in [0, 1], one row per step: a
// shirt-like block, trouser-like bars and a bag-like ring.
function generatedImages() {
  const image = (pixel) => Array.from(
      {length: 28}, (_, r) => Array.from({length: 28}, (_, c) => pixel(r, c)));
  return [
    image((r, c) => (r > 3 && r < 26 && c > 5 && c < 22) ? 0.8 : 0),
    image((r, c) => (r > 1 && (c > 7 && c < 13 || c > 15 && c < 21)) ? 0.7 : 0),
    image((r, c) => {
      const d = Math.hypot(r - 15, c - 13.5);
      return d > 7 && d < 11 ? 0.6 : 0;
    }),
  ];
}

// The inputs: {classify: {model, top_k, sequences}, stream: {model, values,
// chunk}}. A sequence is a list of steps, each a list of input_size numbers
// (or one number when input_size is 1); stream.values is one number per
// step of a model with input size 1.
function loadInputs(file) {
  const defaults = {
    classify: {model: 'fashion_lstm', top_k: 3, sequences: generatedImages()},
    stream: {
      model: 'sine_rnn', chunk: 10,
      values: Array.from({length: 100}, (_, k) => Math.sin(k * Math.PI / 10)),
    },
  };
  if (!file) return defaults;
  const given = JSON.parse(fs.readFileSync(file, 'utf8'));
  return {
    classify: Object.assign(defaults.classify, given.classify || {}),
    stream: Object.assign(defaults.stream, given.stream || {}),
  };
}

// --- Connection ---------------------------------------------------------------

function loadService(protoDir) {
  const file = 'rnnserve/v1/inference.proto';
  if (!fs.existsSync(path.join(protoDir, file))) {
    throw new Error(`${file} not found under ${protoDir}: pass --proto-dir ` +
                    'or set RNNSERVE_PROTO_DIR');
  }
  // keepCase: the proto's field names; longs as decimal strings (uint64 does
  // not fit a JS number); defaults: absent scalars as their zero; oneofs:
  // proto3 `optional` fields keep their presence (expected_first_step = 0 is
  // sent, not dropped).
  const definition = protoLoader.loadSync(file, {
    includeDirs: [protoDir], keepCase: true, longs: String, enums: String,
    defaults: true, oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).rnnserve.v1.Inference;
}

function makeClient(Inference, args) {
  if (!args.tlsCa) return new Inference(args.address, grpc.credentials.createInsecure());
  const read = (file) => file ? fs.readFileSync(file) : null;
  const credentials = grpc.credentials.createSsl(
      read(args.tlsCa), read(args.tlsKey), read(args.tlsCert));
  return new Inference(args.address, credentials);
}

// Metadata of every call: the bearer token as a header (grpc-js refuses
// call credentials on a plaintext channel, and the server may take tokens
// there, e.g. behind a TLS-terminating proxy on the same host).
function callMetadata(token) {
  const metadata = new grpc.Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

function waitForReady(client, seconds) {
  return new Promise((resolve, reject) => {
    client.waitForReady(Date.now() + seconds * 1000, (error) => {
      if (error) reject(new Error(`cannot connect: ${error.message}`));
      else resolve();
    });
  });
}

// --- Calls --------------------------------------------------------------------

class Api {
  constructor(client, token, timeoutSeconds) {
    this.client = client;
    this.token = token;
    this.timeoutSeconds = timeoutSeconds;
  }

  options() {
    return {deadline: Date.now() + this.timeoutSeconds * 1000};
  }

  unary(method, request) {
    return new Promise((resolve, reject) => {
      this.client[method](request, callMetadata(this.token), this.options(),
                          (error, response) => error ? reject(error) : resolve(response));
    });
  }

  // A Regress stream answered chunk by chunk: send() resolves with the
  // response to its request; the stream's error rejects the pending send.
  openRegress() {
    const call = this.client.Regress(callMetadata(this.token), this.options());
    const waiting = [];
    let failure = null;
    let finished = false;
    call.on('status', () => { finished = true; });
    call.on('data', (response) => {
      const next = waiting.shift();
      if (next) next.resolve(response);
    });
    call.on('error', (error) => {
      failure = error;
      while (waiting.length) waiting.shift().reject(error);
    });
    call.on('end', () => {
      failure = failure || new Error('Regress stream ended early');
      while (waiting.length) waiting.shift().reject(failure);
    });
    return {
      send(request) {
        if (failure) return Promise.reject(failure);
        return new Promise((resolve, reject) => {
          waiting.push({resolve, reject});
          call.write(request);
        });
      },
      close() {
        call.end();
        return new Promise((resolve) => {
          if (finished) resolve();
          else call.on('status', () => resolve());
        });
      },
    };
  }
}

// --- Examples -----------------------------------------------------------------

function flatten(sequence) {
  return sequence.flat();
}

async function listModels(api, out) {
  const {models} = await api.unary('ListModels', {});
  out.models = models.map((m) => ({
    name: m.name, version: m.version, task: m.task, cell: m.cell,
    input_size: m.input_size, output_size: m.output_size, labels: m.labels,
  }));
  return models;
}

async function classify(api, inputs, out) {
  const request = {
    model: inputs.model, top_k: inputs.top_k,
    sequences: inputs.sequences.map((s) => ({steps: s.length, values: flatten(s)})),
  };
  const response = await api.unary('Classify', request);
  out.classify = {
    model: response.model, model_version: response.model_version,
    results: response.results.map((r) => ({
      logits: r.logits, probabilities: r.probabilities,
      top: r.top.map((t) => ({index: t.index, label: t.label, probability: t.probability})),
    })),
  };
}

function chunks(values, size) {
  const result = [];
  for (let first = 0; first < values.length; first += size) {
    result.push(values.slice(first, first + size));
  }
  return result;
}

// The sine model over one Regress stream: every chunk sent from the
// session's position, answered before the next is sent; the last ends the
// session.
async function streamRegress(api, inputs, out) {
  const stream = api.openRegress();
  const parts = chunks(inputs.values, inputs.chunk);
  const record = {outputs: [], chunks: []};
  let position = 0;
  for (let i = 0; i < parts.length; i++) {
    const response = await stream.send({
      model: inputs.model, steps: parts[i].length, values: flatten(parts[i]),
      expected_first_step: String(position), end_session: i === parts.length - 1,
    });
    record.chunks.push(chunkRecord(response));
    record.outputs.push(...response.outputs);
    position = Number(response.first_step) + response.steps;
  }
  await stream.close();
  out.regress_stream = record;
}

function chunkRecord(r) {
  return {
    first_step: Number(r.first_step), steps: r.steps, outputs: r.outputs,
    replayed: r.replayed, session_ended: r.session_ended,
    has_token: r.session_token !== '',
  };
}

// The same with RegressChunk, one unary call per chunk carrying the session
// token. With `probe`, after the second chunk: the same chunk resent from
// where it was sent is answered again (replayed), and a chunk sent from a
// wrong position (0) is refused with FAILED_PRECONDITION naming the real one.
async function streamUnary(api, inputs, probe, out) {
  const parts = chunks(inputs.values, inputs.chunk);
  const record = {outputs: [], chunks: []};
  let token = '';
  let position = 0;
  for (let i = 0; i < parts.length; i++) {
    const request = {
      model: inputs.model, session_token: token, steps: parts[i].length,
      values: flatten(parts[i]), expected_first_step: String(position),
      end_session: i === parts.length - 1,
    };
    const response = await api.unary('RegressChunk', request);
    token = response.session_token;
    record.chunks.push(chunkRecord(response));
    record.outputs.push(...response.outputs);
    if (probe && i === 1) out.probes = await probeExactlyOnce(api, request);
    position = Number(response.first_step) + response.steps;
  }
  out.regress_chunk = record;
}

async function probeExactlyOnce(api, lastRequest) {
  const probes = {};
  const again = await api.unary('RegressChunk', lastRequest);
  probes.resent = chunkRecord(again);
  try {
    await api.unary('RegressChunk', {...lastRequest, expected_first_step: '0'});
    probes.wrong_position = {code: 'OK'};
  } catch (error) {
    probes.wrong_position = {
      code: grpc.status[error.code], details: error.details,
      position: (error.metadata && error.metadata.get('rnnserve-session-position')[0]) || null,
    };
    if (error.code !== grpc.status.FAILED_PRECONDITION) throw error;
  }
  return probes;
}

// --- Text output --------------------------------------------------------------

function printText(out, labelsOf) {
  console.log('Models:');
  for (const m of out.models) {
    console.log(`  ${m.name} ${m.version}: ${m.task}, ${m.cell}, ` +
                `input ${m.input_size}, output ${m.output_size}`);
  }
  const labels = labelsOf[out.classify.model] || [];
  console.log(`Classify with ${out.classify.model} ${out.classify.model_version}:`);
  out.classify.results.forEach((r, i) => {
    const top = r.top.map((t) => `${t.label || labels[t.index] || t.index} ` +
                                 `${(100 * t.probability).toFixed(1)}%`);
    console.log(`  sequence ${i}: ${top.join(', ')}`);
  });
  for (const [name, record] of [['Regress stream', out.regress_stream],
                                ['RegressChunk', out.regress_chunk]]) {
    console.log(`${name}:`);
    for (const c of record.chunks) {
      const values = c.outputs.map((v) => v.toFixed(3)).join(' ');
      console.log(`  steps ${c.first_step}..${c.first_step + c.steps - 1}: ${values}`);
    }
  }
}

// --- Main ---------------------------------------------------------------------

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const inputs = loadInputs(args.inputs);
  const client = makeClient(loadService(args.protoDir), args);
  try {
    await waitForReady(client, args.timeout);
    const api = new Api(client, args.token, args.timeout);
    const out = {};
    const models = await listModels(api, out);
    await classify(api, inputs.classify, out);
    await streamRegress(api, inputs.stream, out);
    await streamUnary(api, inputs.stream, args.check, out);
    if (args.check) {
      process.stdout.write(JSON.stringify(out) + '\n');
    } else {
      printText(out, Object.fromEntries(models.map((m) => [m.name, m.labels])));
    }
  } finally {
    client.close();
  }
}

main().catch((error) => {
  const code = error.code !== undefined && grpc.status[error.code];
  console.error(`error: ${code ? `${code}: ${error.details}` : error.message}`);
  process.exitCode = 1;
});
