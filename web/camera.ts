/** The webcam: a MediaStream in a hidden video element, grabbed into a fixed-size canvas per frame. */

export class Camera {
  private readonly canvas: HTMLCanvasElement;
  private readonly context: CanvasRenderingContext2D;
  private ended = false;

  private constructor(private readonly video: HTMLVideoElement, private readonly stream: MediaStream, readonly width: number, readonly height: number) {
    this.canvas = document.createElement('canvas');
    this.canvas.width = width;
    this.canvas.height = height;
    // Read back every frame: a CPU-side canvas avoids a GPU round trip per getImageData.
    this.context = this.canvas.getContext('2d', { willReadFrequently: true })!;
    // An unplugged camera or one taken by another app ends its track; the video would just hold
    // the last frame, and the stylised picture would freeze without a word.
    for (const track of stream.getVideoTracks()) track.addEventListener('ended', () => (this.ended = true), { once: true });
  }

  /**
   * Opens the camera, asking for `width` x `height`; frames are scaled to exactly that size.
   * @throws Error saying why (no camera, permission refused, page not served securely).
   */
  static async open(width: number, height: number): Promise<Camera> {
    if (navigator.mediaDevices?.getUserMedia === undefined) {
      throw new Error('this browser gives the page no camera access (open it as http://127.0.0.1 or https)');
    }
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: width }, height: { ideal: height } }, audio: false });
    } catch (error) {
      const name = (error as DOMException).name;
      const why = name === 'NotAllowedError' ? 'permission was refused' : name === 'NotFoundError' ? 'no camera was found' : (error as Error).message;
      throw new Error(`the camera could not be opened: ${why}`);
    }
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.srcObject = stream;
    await video.play();
    if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) {
      await new Promise<void>((resolve) => video.addEventListener('loadeddata', () => resolve(), { once: true }));
    }
    return new Camera(video, stream, width, height);
  }

  /**
   * The current frame as RGBA bytes, `width` x `height`.
   * @throws Error once the camera has stopped delivering (unplugged, taken by another app).
   */
  grab(): ImageData {
    if (this.ended) throw new Error('the camera stopped (unplugged, or taken by another application)');
    this.context.drawImage(this.video, 0, 0, this.width, this.height);
    return this.context.getImageData(0, 0, this.width, this.height);
  }

  stop(): void {
    for (const track of this.stream.getTracks()) track.stop();
    this.video.srcObject = null;
  }
}
