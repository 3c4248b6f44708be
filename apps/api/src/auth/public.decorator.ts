import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'tokenwire:public';
/** Marks a route that needs no credentials (health probes). */
export const Public = () => SetMetadata(IS_PUBLIC, true);
