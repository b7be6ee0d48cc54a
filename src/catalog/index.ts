/** The image catalog: add/list/check with vendor hashes, and the serving check the server runs at start. */
export { loadCatalogForServing, servingKey, type ServingState, type ServingStatus } from './serving.js';
export {
  addImage,
  checkCatalog,
  findImage,
  entryDigests,
  loadCatalog,
  saveCatalog,
  catalogFilePath,
  CatalogError,
  type AddImageResult,
  type CheckReport,
  type CheckResult,
} from './catalog.js';
export { CATALOG_FILE, validateCatalog, type Catalog, type CatalogEntry } from './schema.js';
