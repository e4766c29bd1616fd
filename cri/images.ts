// CRI ImageService: ListImages, StreamImages, ImageStatus, PullImage, RemoveImage, ImageFsInfo.
import { InvalidArgumentError } from "../runtime/errors";
import type { ImageRecord, ImageService, RegistryAuth } from "../runtime/image/types";
import type { ServiceHandlers } from "./server";
import type { AuthConfig, FilesystemUsage, Image, ImageSpec, Request } from "./types";

/** "1000" or "1000:1000" → uid 1000; "nobody" → username; "" → neither, as containerd reports it. */
export function userOfImage(user: string | undefined): { uid: string | null; username: string } {
  const name = (user ?? "").split(":")[0] ?? "";
  if (name === "") return { uid: null, username: "" };
  if (/^\d+$/.test(name)) return { uid: name, username: "" };
  return { uid: null, username: name };
}

export function toCriImage(img: ImageRecord): Image {
  const { uid, username } = userOfImage(img.runConfig.User);
  return {
    id: img.id,
    repoTags: img.repoTags,
    repoDigests: img.repoDigests,
    size: String(img.size),
    uid: uid === null ? null : { value: uid },
    username,
    spec: { image: img.id, annotations: {}, userSpecifiedImage: "", runtimeHandler: "", imageRef: "" },
    pinned: img.pinned,
  };
}

export function authFromCri(auth: Request<AuthConfig> | null | undefined): RegistryAuth | undefined {
  if (!auth) return undefined;
  const out: RegistryAuth = {};
  if (auth.username) out.username = auth.username;
  if (auth.password) out.password = auth.password;
  if (auth.auth) out.auth = auth.auth;
  if (auth.identityToken) out.identityToken = auth.identityToken;
  if (auth.registryToken) out.registryToken = auth.registryToken;
  return Object.keys(out).length ? out : undefined;
}

export function requireImageName(spec: Request<ImageSpec> | null | undefined, rpc: string): string {
  const name = spec?.image?.trim();
  if (!name) throw new InvalidArgumentError(`${rpc}: image.image is required (an image name, name:tag, name@digest or ID)`);
  return name;
}

function nanos(ms: number): string {
  return (BigInt(ms) * 1_000_000n).toString();
}

export function imageHandlers(images: ImageService): ServiceHandlers {
  const list = async (req: { filter?: { image?: Request<ImageSpec> | null } | null }) => {
    const ref = req.filter?.image?.image?.trim();
    return (await images.list(ref ? { reference: ref } : undefined)).map(toCriImage);
  };
  return {
    unary: {
      ListImages: async (req: { filter?: { image?: Request<ImageSpec> | null } | null }) => ({ images: await list(req) }),
      ImageStatus: async (req: { image?: Request<ImageSpec> | null; verbose?: boolean }) => {
        const name = requireImageName(req.image, "ImageStatus");
        const img = await images.get(name);
        // CRI: an absent image is an empty answer, not an error.
        if (!img) return { image: null, info: {} };
        const info: Record<string, string> = {};
        if (req.verbose) {
          info.info = JSON.stringify({
            id: img.id,
            manifest: img.manifest,
            config: img.config,
            layers: img.layers,
            platform: img.platform,
            chainIds: img.chainIds,
            diffIds: img.diffIds,
            imageConfig: img.runConfig,
          });
        }
        return { image: toCriImage(img), info };
      },
      PullImage: async (req: { image?: Request<ImageSpec> | null; auth?: Request<AuthConfig> | null }) => {
        const name = requireImageName(req.image, "PullImage");
        const img = await images.pull(name, { auth: authFromCri(req.auth) });
        return { imageRef: img.id };
      },
      RemoveImage: async (req: { image?: Request<ImageSpec> | null }) => {
        await images.remove(requireImageName(req.image, "RemoveImage"));
        return {};
      },
      ImageFsInfo: async () => {
        const fs = await images.fsInfo();
        const usage: FilesystemUsage = {
          timestamp: nanos(fs.timestamp),
          fsId: { mountpoint: fs.mountpoint },
          usedBytes: { value: String(fs.usedBytes) },
          inodesUsed: { value: String(fs.inodesUsed) },
        };
        return { imageFilesystems: [usage], containerFilesystems: [] };
      },
    },
    stream: {
      StreamImages: async (req: { filter?: { image?: Request<ImageSpec> | null } | null }, write) => {
        write({ images: await list(req) });
      },
    },
  };
}
