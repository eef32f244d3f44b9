/** Reference data sets: download into a cache, verify against checksums kept in the repository, find. */
export { DataError, type DataErrorCode } from './errors.js';
export { parseManifest, readManifest, manifestGroups, groupDigest, type ManifestEntry } from './manifest.js';
export { fetchDataset, entryUrl, type FetchDatasetOptions, type FetchDatasetReport } from './fetch.js';
export {
  PLANETLAB_SOURCE, PLANETLAB_MANIFEST, planetlabManifest, planetlabDays, planetlabCacheDir, isDayVerified,
  planetlabSearchPath, findPlanetlabDay, planetlabDir, fetchPlanetlab, type PlanetlabLookup, type FetchPlanetlabOptions,
} from './planetlab.js';
