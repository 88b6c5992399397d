export { Model, loadModel, withModel, clearModelCache, availableExecutionProviders, EXECUTION_PROVIDERS, type ExecutionProvider, type RuntimeOptions, type RunTensor } from './session.js';
